"""The latency breakdown gives every instant to exactly one component."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.sims.breakdown import COMPONENTS, PRIORITY, HopRecord, split_intervals


def test_single_frame_on_idle_link() -> None:
    rec = HopRecord("uplink", start=0.0)
    rec.add("coding", 0.0, 0.5)
    rec.add_transmission(0.5, 0.5, 2.5, 4.0)
    rec.add("coding", 4.0, 4.25)
    rec.end = 4.25
    assert rec.breakdown() == {
        "queueing": 0.0, "serialization": 2.0, "propagation": 1.5, "coding": 0.75,
        "sdls": 0.0, "arq_wait": 0.0,
    }


def test_lost_frame_and_retransmission_is_arq_wait() -> None:
    rec = HopRecord("isl", start=0.0)
    # first copy lost (not recorded as a used transmission), retransmitted at t=10
    rec.add_transmission(10.0, 11.0, 12.0, 13.0)
    rec.end = 13.0
    b = rec.breakdown()
    assert b["arq_wait"] == 10.0 and b["queueing"] == 1.0
    assert b["serialization"] == 1.0 and b["propagation"] == 1.0


def test_back_to_back_frames_count_serialization_over_propagation() -> None:
    rec = HopRecord("down", start=0.0)
    rec.add_transmission(0.0, 0.0, 1.0, 3.0)
    rec.add_transmission(0.0, 1.0, 2.0, 4.0)
    rec.end = 4.0
    b = rec.breakdown()
    assert b == {"queueing": 0.0, "serialization": 2.0, "propagation": 2.0, "coding": 0.0,
                 "sdls": 0.0, "arq_wait": 0.0}


def test_sdls_share_of_a_secured_frame() -> None:
    """30 SDLS octets of a 120-octet frame: the last quarter of its coding and serialization
    is ``sdls``; the total is unchanged."""
    rec = HopRecord("up", start=0.0)
    rec.add_split("coding", 0.0, 1.0, 0.25)
    rec.add_transmission(1.0, 1.0, 5.0, 6.0, 0.25)
    rec.add_split("coding", 6.0, 7.0, 0.25)
    rec.end = 7.0
    assert rec.breakdown() == {"queueing": 0.0, "serialization": 3.0, "propagation": 1.0,
                               "coding": 1.5, "sdls": 1.5, "arq_wait": 0.0}


def test_unknown_component_and_incomplete() -> None:
    rec = HopRecord("x", start=0.0)
    with pytest.raises(KeyError):
        rec.add("inference", 0, 1)
    with pytest.raises(ValueError):
        rec.breakdown()


span = st.tuples(st.floats(0, 100), st.floats(0, 100)).map(lambda t: (min(t), max(t)))


@given(start=st.floats(0, 50), length=st.floats(0, 60),
       spans=st.dictionaries(st.sampled_from(PRIORITY), st.lists(span, max_size=6)))
def test_components_sum_to_total(start: float, length: float,
                                 spans: dict[str, list[tuple[float, float]]]) -> None:
    end = start + length
    out = split_intervals(start, end, spans)
    assert set(out) == set(COMPONENTS)
    assert all(v >= 0 for v in out.values())
    assert sum(out.values()) == pytest.approx(end - start, abs=1e-9)


def _owner_at(t: float, spans: dict[str, list[tuple[float, float]]]) -> str:
    """The component an instant belongs to, straight from the definition: the first in
    PRIORITY with a span [a, b) holding it, else ``arq_wait``."""
    for comp in PRIORITY:
        if any(a <= t < b for a, b in spans.get(comp, ())):
            return comp
    return "arq_wait"


@given(start=st.floats(0, 50), length=st.floats(0, 60),
       spans=st.dictionaries(st.sampled_from(PRIORITY), st.lists(span, max_size=6)))
def test_every_piece_goes_to_the_component_owning_it(
        start: float, length: float, spans: dict[str, list[tuple[float, float]]]) -> None:
    # Between consecutive span edges ownership cannot change, so summing each piece into the
    # owner of its midpoint (in edge order) is the whole answer, to the last bit.
    end = start + length
    edges = sorted({start, end} | {x for v in spans.values() for a, b in v
                                   for x in (max(a, start), min(b, end))
                                   if min(b, end) > max(a, start)})
    want = dict.fromkeys(COMPONENTS, 0.0)
    if end > start:
        for lo, hi in itertools.pairwise(edges):
            want[_owner_at((lo + hi) / 2, spans)] += hi - lo
    assert split_intervals(start, end, spans) == want
