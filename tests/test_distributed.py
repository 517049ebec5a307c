"""Sweeps and tuning on dask.distributed (linkstack/sims/distributed.py, sims/sweep.py,
sims/tune.py, ``linkstack sweep`` / ``linkstack tune``), against real Dask clusters that the
tests start (embedded ``LocalCluster`` s, and a ``dask scheduler`` with two ``dask worker``
processes): the same rows serially, on two local workers and on that cluster, seeds that do
not depend on the workers, resuming from the store (also after a sweep killed mid-way), a
failing grid point, a worker killed mid-sweep, an unreachable scheduler, and tuning in
parallel.

The model is the recording of sims/scenarios/gemma-recorded.json, so nothing loads a model.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from dask.distributed import Client, LocalCluster
from typer.testing import CliRunner

from linkstack.cli.sweep import register
from linkstack.payload.backend import RecordedBackend
from linkstack.sims import sweep as sweep_module
from linkstack.sims.distributed import (
    LOCAL_CLUSTER_QUIET,
    DaskRunner,
    Done,
    Lost,
    SerialRunner,
    chunk_size,
    open_runner,
)
from linkstack.sims.memo import MemoBackend
from linkstack.sims.sweep import RowStore, repeat_seeds, run_sweep
from linkstack.sims.tune import tune

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")  # the CLI of this venv's Dask
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
BACKEND = f"recorded:{RECORDING}"
VARY = ["ber=0,1e-3", "links.uplink.stack.arq_params.t1_initial=0.5,3.0"]
BAD_WINDOW = "links.uplink.stack.arq_params.window_width=10,200"  # W = 2K = 400 > 254 fails


def memo() -> MemoBackend:
    return MemoBackend(RecordedBackend.from_json(RECORDING.read_text()))


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def samples_of(result: sweep_module.SweepResult) -> list[tuple[dict[str, str], list[object]]]:
    return [(p.values, p.evaluation.samples) for p in result.points]


def store_rows(folder: Path) -> dict[str, list[object]]:
    """Key -> samples of every row in a sweep's store (wall time and worker left out)."""
    return {p.stem: json.loads(p.read_text())["samples"] for p in (folder / "rows").iterdir()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process started in its own session, and its children (a worker's nanny
    process and the worker under it): SIGTERM to its group, SIGKILL if it lingers."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def dask_cli_cluster(tmp_path: Path) -> Iterator[str]:
    """A real cluster as the README starts one: ``dask scheduler`` and two ``dask worker``
    processes (one single-threaded worker each), on loopback ports; stopped afterwards."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(subprocess.Popen([str(DASK), *args], stdout=log,
                                          stderr=subprocess.STDOUT, cwd=tmp_path,
                                          start_new_session=True))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", port,
              "--no-dashboard", "--no-show")
        for i in range(2):
            start(f"worker{i}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                  "--local-directory", str(tmp_path / f"w{i}"), "--death-timeout", "60")
        deadline = time.monotonic() + 60
        while True:  # the scheduler listening, then both workers registered
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                text = "\n".join(f.read_text() for f in sorted(logs.iterdir()))
                pytest.fail(f"the dask CLI cluster did not come up:\n{text}")
            try:
                with Client(address, timeout=5, set_as_default=False) as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    break
            except (OSError, TimeoutError):
                time.sleep(0.2)
        yield address
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            stop(proc)


def two_worker_cluster() -> LocalCluster:
    """Two single-threaded worker processes, each under a nanny (which restarts it if it
    dies), on free ports."""
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                        **LOCAL_CLUSTER_QUIET)


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A two-worker cluster of processes, shared by the tests that only need to use one."""
    with two_worker_cluster() as cluster:
        yield cluster.scheduler_address


# ---------------------------------------------------------------------------------------------
# the same rows wherever they run


def test_serial_two_local_workers_and_a_dask_cli_cluster_write_identical_rows(
        tmp_path: Path, dask_cli_cluster: str) -> None:
    args = ["sweep", "default", "--vary", VARY[0], "--vary", VARY[1], "--repeat", "2",
            "--prompts", "3", "--backend", BACKEND]
    where = {"serial": (["--workers", "1"], "in this process"),
             "local": (["--workers", "2"], "on a local Dask cluster of 2 worker processes"),
             "cli": (["--scheduler", dask_cli_cluster],
                     f"on the Dask cluster at {dask_cli_cluster} (2 threads)")}
    for name, (option, said) in where.items():
        res = CliRunner().invoke(app(), [*args, *option, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert f"runs: 8 now ({said}), 0 kept" in " ".join(res.output.split())
    rows = {name: store_rows(tmp_path / name) for name in where}
    assert len(rows["serial"]) == 8
    assert rows["local"] == rows["serial"] and rows["cli"] == rows["serial"]  # keys, samples
    for name in ("sweep.csv", "samples.csv"):
        serial = (tmp_path / "serial" / name).read_bytes()
        assert (tmp_path / "local" / name).read_bytes() == serial
        assert (tmp_path / "cli" / name).read_bytes() == serial
    # the cluster's rows were computed by its workers, not here
    ran_on = {json.loads(p.read_text())["worker"].rsplit(":", 1)[1]
              for p in (tmp_path / "cli" / "rows").iterdir()}
    assert ran_on and str(os.getpid()) not in ran_on


def _square(context: int, item: int) -> int:
    if item == context:
        raise ValueError("the bad item")
    return item * item


def test_many_items_go_in_chunks_and_come_back_each_once(scheduler: str) -> None:
    assert [chunk_size(n, 2) for n in (1, 8, 15, 16, 32, 64, 1000)] == [1, 1, 1, 2, 4, 8, 8]
    got: dict[int, object] = {}

    def on_result(i: int, outcome: object) -> None:
        assert i not in got
        got[i] = outcome

    with open_runner(scheduler=scheduler) as runner:
        runner.run(_square, -1, list(range(40)), on_result)  # 8 tasks of 5 items
        assert got == {i: Done(i * i) for i in range(40)}
        got.clear()
        runner.run(_square, 7, list(range(40)), on_result)  # 7 raises: its task is lost
    lost = sorted(i for i, o in got.items() if isinstance(o, Lost))
    assert len(got) == 40 and 7 in lost and len(lost) == 5
    assert all(got[i] == Done(i * i) for i in range(40) if i not in lost)
    assert got[7] == Lost("ValueError: the bad item")


def test_seeds_do_not_depend_on_the_workers(scheduler: str) -> None:
    kwargs = {"sets": ["scenario.seed=11"], "n_prompts": 2, "repeat": 3}
    serial = run_sweep("default", VARY[:1], memo(), **kwargs)
    with open_runner(scheduler=scheduler) as runner:
        assert runner.parallelism == 2
        parallel = run_sweep("default", VARY[:1], memo(), runner=runner, **kwargs)
    seeds = repeat_seeds(11, 3)
    for result in (serial, parallel):
        assert result.ran == 6 and not result.failures
        for point in result.points:  # every point, the same spawned seeds, in repeat order
            assert [s.seed for s in point.evaluation.samples] == [x for x in seeds for _ in "ab"]
    assert samples_of(serial) == samples_of(parallel)
    fewer = run_sweep("default", VARY[:1], memo(), sets=["scenario.seed=11"], n_prompts=2,
                      repeat=2)
    assert {s.seed for p in fewer.points for s in p.evaluation.samples} == set(seeds[:2])


# ---------------------------------------------------------------------------------------------
# the store: resume, --fresh


def test_a_rerun_resumes_and_runs_only_the_missing_rows(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = sweep_module.run_roundtrip

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep_module, "run_roundtrip", counting)
    folder = tmp_path / "out"
    store = RowStore(folder, "recorded:test")

    def sweep(varies: list[str], repeat: int, **kw: object) -> sweep_module.SweepResult:
        return run_sweep("default", varies, memo(), n_prompts=2, repeat=repeat, store=store,
                         **kw)  # type: ignore[arg-type]

    first = sweep(VARY, 2)
    assert (first.ran, first.reused, len(calls)) == (8, 0, 8)
    assert len(list((folder / "rows").iterdir())) == 8 and (folder / "memo.json").is_file()
    again = sweep(VARY, 2)
    assert (again.ran, again.reused, len(calls)) == (0, 8, 8)  # nothing ran
    assert samples_of(again) == samples_of(first)
    # a third value and a third seed: only the 3*2*3 - 8 new rows run
    grown = sweep(["ber=0,1e-3,1e-4", VARY[1]], 3)
    assert (grown.ran, grown.reused, len(calls)) == (10, 8, 18)
    assert samples_of(grown)[0][1][:4] == samples_of(first)[0][1]  # seeds 1-2 kept
    fresh = sweep(VARY, 2, fresh=True)
    assert (fresh.ran, fresh.reused, len(calls)) == (8, 0, 26)
    assert len(list((folder / "rows").iterdir())) == 8
    assert samples_of(fresh) == samples_of(first)


def test_cli_resume_and_fresh_rebuild_the_outputs_from_the_store(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["sweep", "default", "--vary", VARY[0], "--repeat", "2", "--prompts", "2",
            "--backend", BACKEND, "--workers", "1", "--out", str(out)]
    res = CliRunner().invoke(app(), args)
    assert res.exit_code == 0, res.output
    assert "runs: 4 now (in this process), 0 kept" in res.output
    before = (out / "sweep.csv").read_bytes()
    (out / "sweep.csv").unlink()
    (out / "sweep.png").unlink()
    res = CliRunner().invoke(app(), args)
    assert res.exit_code == 0 and "runs: 0 now" in res.output and "4 kept" in res.output
    assert (out / "sweep.csv").read_bytes() == before and (out / "sweep.png").is_file()
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert all(r["median_ci_low_s"] and r["p95_ci_high_s"] for r in rows)  # 2 seeds: CIs
    res = CliRunner().invoke(app(), [*args, "--fresh"])
    assert res.exit_code == 0 and "runs: 4 now" in res.output and "0 kept" in res.output
    assert (out / "sweep.csv").read_bytes() == before


def row_files(folder: Path) -> list[Path]:
    rows = folder / "rows"
    return sorted(rows.glob("*.json")) if rows.is_dir() else []


def test_a_sweep_killed_mid_way_resumes_to_the_rows_of_a_fresh_run(tmp_path: Path) -> None:
    """SIGKILL the command once some rows are stored (and leave a half-written row file, as a
    kill between writing and renaming would); the rerun runs only the missing rows, and the
    store ends with every row once, equal to an uninterrupted run's."""
    args = ["sweep", "default", "--vary", "ber=0,1e-4,1e-3,3e-3", "--vary", VARY[1],
            "--repeat", "2", "--prompts", "3", "--backend", BACKEND, "--workers", "1"]
    total = 4 * 2 * 2
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "linkstack", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(row_files(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        running = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop(proc)
    assert running, f"the sweep ended (exit {proc.returncode}) before it could be killed"
    kept = len(row_files(out))
    assert 3 <= kept < total
    partial = out / "rows" / f"{'0' * 64}.tmp{proc.pid}"
    partial.write_text('{"format": 1, "key": "')  # the killed process's own temporary file

    res = CliRunner().invoke(app(), [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"runs: {total - kept} now (in this process), {kept} kept" in res.output
    assert not partial.exists()
    assert sorted(p.name for p in (out / "rows").iterdir()) == [p.name for p in row_files(out)]
    fresh = CliRunner().invoke(app(), [*args, "--out", str(tmp_path / "fresh")])
    assert fresh.exit_code == 0 and f"runs: {total} now" in fresh.output
    assert len(row_files(out)) == total
    assert store_rows(out) == store_rows(tmp_path / "fresh")
    for name in ("sweep.csv", "samples.csv"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_a_sweep_interrupted_on_the_cluster_resumes_there(tmp_path: Path,
                                                          scheduler: str) -> None:
    """Ctrl-C (KeyboardInterrupt in the client) after 3 results: the tasks still queued are
    cancelled, and a rerun on the same cluster runs only what is not stored."""
    kwargs = {"n_prompts": 2, "repeat": 3}
    total = 4 * 3
    store = RowStore(tmp_path / "out", "recorded:test")

    def interrupt(done: int, _total: int) -> None:
        if done >= 3:
            raise KeyboardInterrupt

    with open_runner(scheduler=scheduler) as runner:
        with pytest.raises(KeyboardInterrupt):
            run_sweep("default", VARY, memo(), store=store, runner=runner, progress=interrupt,
                      **kwargs)
        kept = len(row_files(tmp_path / "out"))
        assert kept == 3
        with Client(scheduler, set_as_default=False) as client:  # nothing left running
            deadline = time.monotonic() + 10
            while any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(client.processing().values())
        resumed = run_sweep("default", VARY, memo(), store=store, runner=runner, **kwargs)
    assert (resumed.ran, resumed.reused, resumed.runs) == (total - kept, kept, total)
    assert not resumed.failures
    clean = run_sweep("default", VARY, memo(), store=RowStore(tmp_path / "clean", "recorded:test"),
                      **kwargs)
    assert len(row_files(tmp_path / "out")) == total
    assert store_rows(tmp_path / "out") == store_rows(tmp_path / "clean")
    assert samples_of(resumed) == samples_of(clean)


# ---------------------------------------------------------------------------------------------
# faults


def test_a_failing_point_is_reported_and_the_others_go_on(tmp_path: Path,
                                                          scheduler: str) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app(), [
        "sweep", "default", "--vary", "ber=0,1e-3", "--vary", BAD_WINDOW, "--prompts", "2",
        "--backend", BACKEND, "--scheduler", scheduler, "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert f"on the Dask cluster at {scheduler}" in res.output
    assert "runs: 4 now" in res.output and "2 failed" in res.output
    failed = [line for line in res.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2
    for line, ber in zip(failed, ("0", "1e-3"), strict=True):
        assert line.startswith(f"failed: ber={ber}, arq_params.window_width=200 (1 of 1 runs")
        assert "ConfigError: links.uplink.stack.arq_params.farm_window_width: 400" in line
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["ber"], r["links.uplink.stack.arq_params.window_width"]) for r in rows] == [
        ("0", "10"), ("1e-3", "10")]
    bad = list(csv.DictReader((out / "failed.csv").open()))
    assert [(r["ber"], r["error_type"]) for r in bad] == [("0", "ConfigError"),
                                                          ("1e-3", "ConfigError")]
    assert len(list((out / "rows").iterdir())) == 2  # failed runs are not stored: rerun next time


def test_a_worker_killed_mid_sweep_changes_nothing() -> None:
    kwargs = {"n_prompts": 3, "repeat": 3}
    clean = run_sweep("default", VARY, memo(), runner=SerialRunner(), **kwargs)
    with two_worker_cluster() as cluster, Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_one(done: int, total: int) -> None:
            if done < 1 or killed:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # a worker that is running a task right now
                busy = [w for w, keys in client.processing().items()
                        if any(str(k).startswith("linkstack-run_row") for k in keys)]
                if busy:
                    killed.append(pids[busy[0]])
                    os.kill(killed[0], signal.SIGKILL)
                    return
                time.sleep(0.005)

        runner = DaskRunner(scheduler=cluster.scheduler_address)
        try:
            result = run_sweep("default", VARY, memo(), runner=runner, progress=kill_one,
                               **kwargs)
        finally:
            runner.close()
        assert killed, "no worker was busy after the first result"
        with pytest.raises(ProcessLookupError):
            os.kill(killed[0], 0)
        assert killed[0] not in client.run(os.getpid).values()  # the nanny started another
    assert result.ran == 12 and not result.failures
    assert samples_of(result) == samples_of(clean)


def test_an_unreachable_scheduler_is_one_line_within_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "linkstack", "sweep", "default", "--vary", "ber=0,1e-4",
         "--backend", BACKEND, "--scheduler", f"tcp://127.0.0.1:{port}",
         "--connect-timeout", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: --scheduler: cannot use the Dask scheduler at "
                               f"tcp://127.0.0.1:{port}: no Dask scheduler answers there "
                               "within 1 s")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert elapsed < 15  # the interpreter and imports, plus the 1 s timeout
    assert not (tmp_path / "out" / "rows").exists()


# ---------------------------------------------------------------------------------------------
# tuning


def test_tuning_in_parallel_gives_the_serial_result(scheduler: str, tmp_path: Path) -> None:
    sets = ["links.uplink.ber=2e-3", "run.timeout_s=60.0"]
    serial = tune("default", memo(), sets=sets, budget=12, n_prompts=2, repeat=2)
    numbers: list[int] = []
    with open_runner(scheduler=scheduler) as runner:
        parallel = tune("default", memo(), sets=sets, budget=12, n_prompts=2, repeat=2,
                        runner=runner, on_trial=lambda t, _: numbers.append(t.number))

    def trials(result: object) -> list[tuple[object, ...]]:
        return [(t.assignment, t.error, t.accepted,
                 None if t.evaluation is None else t.evaluation.samples)
                for t in result.trials]  # type: ignore[attr-defined]

    assert trials(parallel) == trials(serial)
    assert numbers == list(range(1, len(serial.trials) + 1))  # reported in the search's order
    assert parallel.best_assignment == serial.best_assignment
    assert parallel.evaluations == serial.evaluations <= 12
    assert parallel.best.stats == serial.best.stats
    # the command, on the cluster and here
    args = ["tune", "default", "--budget", "6", "--set", "links.uplink.ber=2e-3", "--prompts",
            "2", "--backend", BACKEND, "--json"]
    docs = []
    for where in (["--workers", "1"], ["--scheduler", scheduler]):
        res = CliRunner().invoke(app(), [*args, *where, "--out", str(tmp_path / "t.toml")])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output[res.output.index("{"):])
        docs.append({k: doc[k] for k in ("evaluations", "default", "tuned", "overrides")})
    assert docs[0] == docs[1]
