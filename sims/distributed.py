"""Where the round trips of a sweep or a tuning run are computed: in this process, or on
``dask.distributed`` (an embedded ``LocalCluster`` or an existing cluster's scheduler).

A :class:`Runner` maps a module-level function over independent work items that share one
*context* (the scenario and the memoized model answers, :mod:`linkstack.sims.sweep`), and hands
every outcome back to the caller as it arrives, in the caller's thread::

    with open_runner(workers=4) as runner:               # or scheduler="tcp://host:8786"
        runner.run(fn, context, items, on_result)         # on_result(index, Done | Lost)

* :class:`SerialRunner` calls ``fn`` in order, here (``--workers 1``).
* :class:`DaskRunner` submits the items to a ``dask.distributed`` client, one task per item
  (several per task in a long sweep: :func:`chunk_size`). The context
  is submitted once, as a task that returns it: workers fetch it from each other, and if every
  copy is lost with its workers the scheduler computes it again from the task. An embedded
  cluster is started on first use (not at all when there is at most one item to run; that one
  runs here) with one single-threaded worker process per worker, and closed with the runner.

Faults. ``fn`` is expected to catch the errors of its own work and return them as data (a
grid point that raises is a result, not a crash). What is left is the infrastructure's:
a worker process that dies while it holds tasks makes the scheduler run those tasks again on
the other workers (``distributed.scheduler.allowed-failures`` deaths per task before it gives
up with ``KilledWorker``); an exception that escapes ``fn`` is retried ``retries`` times by
Dask. Either way an item that finally fails comes back as :class:`Lost` with a one-line
reason (with the other items of its task, if it shared one), and the others go on. Since
every item is a pure function of its inputs (its seeds included), a rerun gives the same
result as a clean run.

A scheduler address that does not answer within ``connect_timeout`` seconds, or that has no
worker within it, raises :class:`~linkstack.errors.ConfigError` (key ``--scheduler``) with one
line saying so.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from linkstack.errors import ConfigError

__all__ = [
    "DaskRunner",
    "Done",
    "Lost",
    "Runner",
    "SerialRunner",
    "chunk_size",
    "default_workers",
    "open_runner",
]

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""How long ``--scheduler`` waits for the scheduler to answer (and to have a worker)."""

TASK_RETRIES = 2
"""Dask retries of a task whose function raised (the function catches its own errors: this is
for what happens around it, e.g. a worker that cannot unpickle the task)."""

ALLOWED_FAILURES = 3
"""Worker deaths a task may see on an embedded cluster before it is given up (Dask's
``distributed.scheduler.allowed-failures``; an external cluster uses its scheduler's)."""


CHUNKS_PER_THREAD = 4
"""A sweep of many items is sent as at least this many tasks per worker thread."""

MAX_CHUNK = 8
"""Items per task at most (a task's items reach the caller together, and a lost worker loses
them together)."""


LOCAL_CLUSTER_QUIET: dict[str, Any] = {
    "dashboard_address": None,
    # no dashboard; the scheduler's small HTTP server on a free port, not on 8787 (which
    # another cluster may hold: Dask would warn and move)
    "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
}
"""Options of an embedded ``LocalCluster`` that keep it off fixed ports."""

LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    # A worker's statistical profiler wakes every 10 ms and walks the task thread's stack
    # while holding the GIL: on rows of ~100 ms of pure Python that costs the rows time
    # (measured: ~15 % per row with it on). An embedded cluster has no dashboard to show it.
    "distributed.worker.profile.enabled": False,
}
"""Dask configuration of an embedded cluster (its worker processes get it from the nanny);
an external cluster keeps its own."""

LOCAL_CLUSTER_LOG_LEVEL = logging.CRITICAL
"""Dask's own log level in an embedded cluster: what matters reaches the command as results
(a run that could not be computed is reported as lost), and Dask's messages about restarting
a dead worker, or its heartbeats failing while the cluster closes, would only add noise."""


@dataclass(frozen=True)
class Done:
    """An item's function returned ``value``."""

    value: Any


@dataclass(frozen=True)
class Lost:
    """An item could not be computed: ``reason`` in one line (e.g. its workers kept dying)."""

    reason: str


OnResult = Callable[[int, Done | Lost], None]


class Runner(Protocol):
    """Runs ``fn(context, item)`` for every item; ``on_result(index, outcome)`` as each ends."""

    @property
    def parallelism(self) -> int:
        """How many items run at once (1: serially)."""
        ...

    def describe(self) -> str: ...

    def run(self, fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any],
            on_result: OnResult) -> None: ...


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class SerialRunner:
    """Every item in this process, in order."""

    parallelism = 1

    def describe(self) -> str:
        return "in this process"

    def run(self, fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any],
            on_result: OnResult) -> None:
        for i, item in enumerate(items):
            on_result(i, Done(fn(context, item)))


def _identity(value: Any) -> Any:
    return value


def _run_chunk(fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any]) -> list[Any]:
    return [fn(context, item) for item in items]


def chunk_size(n: int, parallelism: int) -> int:
    """Items per Dask task: one, unless there are more than :data:`CHUNKS_PER_THREAD` per
    thread, then up to :data:`MAX_CHUNK` (fewer tasks: less of Dask's per-task cost, which is
    milliseconds against runs of tens of them, while every thread still gets several)."""
    return max(1, min(MAX_CHUNK, n // (CHUNKS_PER_THREAD * max(1, parallelism))))


def _preload(modules: Sequence[str]) -> str:
    """Import ``modules`` on a worker (once, before its first task), and call the
    ``warm_up()`` of each that has one; the worker's linkstack version."""
    for name in modules:
        warm = getattr(importlib.import_module(name), "warm_up", None)
        if callable(warm):
            warm()
    from linkstack import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class DaskRunner:
    """Items as ``dask.distributed`` tasks: on the cluster at ``scheduler``, or on an embedded
    ``LocalCluster`` of ``workers`` processes started on first use. On connecting, every
    worker imports ``preload`` and runs its ``warm_up()`` (so that the first tasks do not pay
    for either) and must run this client's linkstack version."""

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
                 retries: int = TASK_RETRIES,
                 preload: Sequence[str] = ("linkstack.sims.sweep",)) -> None:
        if (workers is None) == (scheduler is None):
            raise ValueError("give workers or scheduler")
        self.preload = tuple(preload)
        self.workers = workers
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout
        self.retries = retries
        self._cluster: Any = None
        self._client: Any = None

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> Any:
        """The client (connecting, or starting the embedded cluster, the first time)."""
        if self._client is not None:
            return self._client
        from dask.distributed import Client

        if self.scheduler is not None:
            client = _connect(self.scheduler, self.connect_timeout)
        else:
            import dask
            from dask.distributed import LocalCluster

            assert self.workers is not None
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                                  **LOCAL_CLUSTER_CONFIG}):
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                             processes=True, host="127.0.0.1",
                                             silence_logs=LOCAL_CLUSTER_LOG_LEVEL,
                                             **LOCAL_CLUSTER_QUIET)
            client = Client(self._cluster, set_as_default=False)
        self._client = client
        try:
            versions = client.run(_preload, self.preload)
        except Exception as exc:
            self.close()
            raise ConfigError(f"a Dask worker cannot run linkstack: {_one_line(exc)}",
                              key="--scheduler" if self.scheduler else "--workers") from None
        from linkstack import __version__

        other = {w: v for w, v in versions.items() if v != __version__}
        if other:
            self.close()
            raise ConfigError(f"Dask workers run another linkstack version than this client's "
                              f"{__version__}: {other}", key="--scheduler")
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def parallelism(self) -> int:
        if self.scheduler is None:
            assert self.workers is not None
            return self.workers
        info = self.connect().scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info["workers"].values()))

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"on the Dask cluster at {self.scheduler} ({self.parallelism} threads)"
        if self._client is None:
            return "in this process (too little work to start a cluster)"
        return f"on a local Dask cluster of {self.workers} worker processes"

    # -- work ------------------------------------------------------------------------------

    def run(self, fn: Callable[[Any, Any], Any], context: Any, items: Sequence[Any],
            on_result: OnResult) -> None:
        if not items:
            return
        if self.scheduler is None and len(items) == 1 and self._client is None:
            SerialRunner().run(fn, context, items, on_result)  # not worth starting a cluster
            return
        from dask.distributed import as_completed

        client = self.connect()
        token = uuid.uuid4().hex[:12]
        ctx = client.submit(_identity, context, pure=False, key=f"linkstack-context-{token}")
        name = getattr(fn, "__name__", "task")
        size = chunk_size(len(items), self.parallelism)
        n_chunks = -(-len(items) // size)
        # strided, so that neighbours (often alike, e.g. the slow runs of one high BER)
        # spread over the chunks
        chunks = [list(range(c, len(items), n_chunks)) for c in range(n_chunks)]
        # one graph for all chunks (one message to the scheduler), and the results gathered
        # by the client's event loop as they finish rather than one blocking call each
        batch = client.map(_run_chunk, [fn] * len(chunks), [ctx] * len(chunks),
                           [[items[i] for i in chunk] for chunk in chunks], pure=False,
                           retries=self.retries,
                           key=[f"linkstack-{name}-{token}-{c[0]}" for c in chunks])
        futures = {future: chunk for future, chunk in zip(batch, chunks, strict=True)}
        pending = set(futures)
        try:
            for future, value in as_completed(batch, loop=client.loop, with_results=True,
                                              raise_errors=False):
                chunk = futures[future]
                pending.discard(future)
                if future.status == "finished":
                    outcomes: list[Done | Lost] = [Done(v) for v in value]
                else:
                    exc = value if isinstance(value, BaseException) else future.exception()
                    lost = Lost(_one_line(exc) if exc is not None else future.status)
                    outcomes = [lost] * len(chunk)
                future.release()
                for i, outcome in zip(chunk, outcomes, strict=True):
                    on_result(i, outcome)
        finally:
            if pending:  # interrupted: nothing left running for us
                client.cancel(list(pending))
            ctx.release()


async def _probe(address: str, timeout: float) -> dict[str, Any]:
    """The identity of the server at ``address`` (one connection, closed again)."""
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
    finally:
        await comm.close()
    return reply if isinstance(reply, dict) else {}


def _connect(address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address`` that has a worker, or a one-line ConfigError.

    The address is probed first with one plain connection (a ``Client`` that fails to connect
    leaves a background loop behind that complains when it is collected)."""
    from dask.distributed import Client

    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"cannot use the Dask scheduler at {address}: {reason}",
                           key="--scheduler")

    quiet = [logging.getLogger(n) for n in ("distributed.comm", "distributed.core")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        identity = asyncio.run(asyncio.wait_for(_probe(address, timeout), timeout + 1.0))
    except Exception as exc:  # refused, timed out, not an address, not speaking Dask
        raise refuse(f"no Dask scheduler answers there within {timeout:g} s "
                     f"({_one_line(exc)})") from None
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
    if identity.get("type") != "Scheduler":
        raise refuse(f"that is a {identity.get('type', 'server of another kind')}, "
                     "not a scheduler")
    client = Client(address, timeout=timeout, set_as_default=False)
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        client.close()
        raise refuse(f"it has no worker after {timeout:g} s") from None
    return client


@contextmanager
def open_runner(workers: int | None = None, scheduler: str | None = None,
                connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> Iterator[Runner]:
    """The runner of ``--workers N`` / ``--scheduler ADDRESS``: serial for one worker and no
    scheduler; else Dask (``workers`` None: one per core). Connects to a scheduler at once (so
    that a bad address fails before any work); an embedded cluster starts on first use."""
    if scheduler is not None and workers is not None:
        raise ConfigError("give --workers or --scheduler, not both", key="--workers")
    if scheduler is None:
        n = default_workers() if workers is None else workers
        if n < 1:
            raise ConfigError(f"{n} must be >= 1", key="--workers")
        if n == 1:
            yield SerialRunner()
            return
        runner = DaskRunner(workers=n)
    else:
        runner = DaskRunner(scheduler=scheduler, connect_timeout=connect_timeout)
        runner.connect()
    try:
        yield runner
    finally:
        runner.close()
