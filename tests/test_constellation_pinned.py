"""Constellation runs pinned prompt by prompt (linkstack.sims.constellation.simulate).

The speed work on the simulator (cached snapshot graphs, the ingress search, less scheduling
per hop) must not change a single result: the same scenario and seed give the same answers,
statuses, placements, routes, totals and breakdowns, to the last bit of every float. The
expected records in ``tests/data/constellation_pinned.json`` were written by the simulator as it
was before that work (commit 1d56057), with the model replayed from
``sims/scenarios/gemma-recorded.json``; they were rewritten once since, when the run moved from
tasks to scheduler callbacks: the two walker runs came out bit-identical, and the ring's
differ only where several prompts stored at one station leave at the same instant, when its
contact begins -- they now leave in the order they arrived (the callbacks' posting order),
where before they left in the order trio happened to wake their tasks. Four runs cover the
code paths: the 2,800-satellite shell under ``nearest-free`` (ingress answers, placements by
snapshot shortest paths when the ingress is loaded), the shell with everything sent to one
satellite and inter-plane links cut above 20 deg (routes of ~20 ISL hops that change as links
break), and the 12-satellite ring with and without ISL routing (store and forward over long
waits).

To rewrite the file after an intended change of results:
``LINKSTACK_PIN_WRITE=1 pytest tests/test_constellation_pinned.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from linkstack.cli.run import load_backend
from linkstack.sims.constellation.scenario import load_constellation
from linkstack.sims.constellation.simulate import run_constellation

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "sims" / "scenarios" / "gemma-recorded.json"
PINNED = Path(__file__).resolve().parent / "data" / "constellation_pinned.json"

RUNS: dict[str, tuple[str, list[str], float]] = {
    "walker-nearest-free": ("walker-2800", [], 30.0),
    "walker-fixed-polar": (
        "walker-2800",
        [
            "routing.policy=fixed",
            "routing.compute=sat-10-25",
            "constellation.isl.polar_limit_deg=20",
            "constellation.slots=64",
            "constellation.queue_limit=100000",
            "routing.segment_s=60",
        ],
        4.0,
    ),
    "star-nearest-free": ("star-compute", [], 3600.0),
    "star-no-isl": ("star-compute", ["routing.policy=no-isl"], 3600.0),
}


def _run(name: str) -> dict[str, Any]:
    scenario, overrides, duration = RUNS[name]
    sc = load_constellation(scenario, overrides)
    report = run_constellation(sc, load_backend(None, f"recorded:{RECORDING}"), duration_s=duration)
    # through JSON, as the file holds it (floats round-trip exactly: repr is shortest-exact)
    return json.loads(json.dumps(report.as_dict()))


@pytest.mark.parametrize("name", list(RUNS))
def test_runs_are_pinned_prompt_by_prompt(name: str) -> None:
    got = _run(name)
    if os.environ.get("LINKSTACK_PIN_WRITE"):
        pinned = json.loads(PINNED.read_text()) if PINNED.exists() else {}
        pinned[name] = got
        PINNED.parent.mkdir(exist_ok=True)
        PINNED.write_text(json.dumps(pinned, indent=0, sort_keys=True) + "\n")
    want = json.loads(PINNED.read_text())[name]
    assert len(got["prompts"]) == len(want["prompts"]) > 10
    for g, w in zip(got["prompts"], want["prompts"], strict=True):
        assert g == w, (g["request_id"], g, w)
    assert got == want
