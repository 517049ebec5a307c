"""Routing over contact plans: earliest arrival (contact-graph routing) and snapshot paths.

The earliest-arrival oracle here enumerates every simple contact sequence of a small plan and
applies the per-hop rule written out again below, independently of the module: the message
departs at ``max(ready, start)``, transmits ``size_bits / rate_bps`` seconds, which must end by
``end_s`` (a zero-size message must depart strictly before ``end_s``), and arrives ``owlt_s``
later. The best route minimises (arrival time, hop count) lexicographically (CCSDS 734.3-B-1
§3.2.8.1.4). Times, OWLTs, rates and sizes are small dyadic numbers, so the arithmetic is exact
and the comparison can be exact too. Networkx is the oracle for the snapshot shortest paths.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkstack.sims.constellation import routing
from linkstack.sims.constellation.plan import Contact, ContactPlan, NodeTable
from linkstack.sims.constellation.routing import (
    Route,
    RoutingTable,
    earliest_arrival_route,
    hop_arrival,
    snapshot_graph,
    snapshot_path,
    snapshot_paths,
)

# -- the independent oracle and a route checker ----------------------------------------------


def _oracle_hop(c: Contact, ready: float, size_bits: float) -> float | None:
    start = max(ready, c.start_s)
    done = start + size_bits / c.rate_bps
    if not start < c.end_s or done > c.end_s:
        return None
    return done + c.owlt_s


def oracle(
    contacts: list[Contact],
    src: int,
    dests: set[int],
    t0: float,
    size_bits: float = 0.0,
    excluded_nodes: Iterable[int] = (),
    excluded_links: Iterable[tuple[int, int]] = (),
) -> tuple[float, int] | None:
    """Least (arrival, hops) over all simple contact sequences from ``src`` into ``dests``."""
    banned_nodes = set(excluded_nodes)
    banned_links = set(excluded_links)
    goals = dests - banned_nodes
    best: list[tuple[float, int]] = []

    def walk(node: int, ready: float, hops: int, seen: frozenset[int]) -> None:
        if node in goals:
            best.append((ready, hops))
            return
        for c in contacts:
            if c.frm != node or c.to in seen or c.to in banned_nodes:
                continue
            if (c.frm, c.to) in banned_links:
                continue
            arrival = _oracle_hop(c, ready, size_bits)
            if arrival is not None:
                walk(c.to, arrival, hops + 1, seen | {c.to})

    walk(src, t0, 0, frozenset({src}))
    return min(best) if best else None


def check_route(
    route: Route,
    src: int,
    dests: set[int],
    t0: float,
    size_bits: float = 0.0,
    excluded_nodes: Iterable[int] = (),
    excluded_links: Iterable[tuple[int, int]] = (),
) -> None:
    """The route is feasible hop by hop and its fields agree with each other."""
    assert route.src == src and route.t0_s == t0 and route.size_bits == size_bits
    assert route.hops == len(route.contacts) == len(route.departures_s) == len(route.arrivals_s)
    nodes = route.nodes
    assert nodes[0] == src and nodes[-1] == route.dst and route.dst in dests
    assert len(set(nodes)) == len(nodes), "a route never visits a node twice"
    assert not set(nodes) & set(excluded_nodes)
    ready = t0
    for i, c in enumerate(route.contacts):
        assert c.frm == nodes[i] and c.to == nodes[i + 1]
        assert (c.frm, c.to) not in set(excluded_links)
        assert route.departures_s[i] == max(ready, c.start_s)
        assert route.arrivals_s[i] == _oracle_hop(c, ready, size_bits)
        ready = route.arrivals_s[i]
    assert route.arrival_s == ready
    assert route.delay_s == ready - t0


# -- hypothesis plans ----------------------------------------------------------------------


@st.composite
def plans(draw: st.DrawFn) -> tuple[int, list[Contact]]:
    """3-7 nodes, up to 30 contacts on a coarse time grid (ties between routes are common)."""
    n = draw(st.integers(3, 7))
    contacts = []
    for _ in range(draw(st.integers(1, 30))):
        frm = draw(st.integers(0, n - 1))
        to = draw(st.integers(0, n - 2))
        to = to if to < frm else to + 1
        start = draw(st.integers(0, 40)) / 2
        length = draw(st.integers(1, 16)) / 2
        rate = draw(st.sampled_from([1.0, 2.0, 4.0, 8.0]))
        owlt = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]))
        contacts.append(Contact(start, start + length, frm, to, rate, owlt))
    return n, contacts


@given(
    plan=plans(),
    data=st.data(),
    size_bits=st.sampled_from([0.0, 0.0, 1.0, 2.0, 4.0]),
    window=st.sampled_from([1.0, 3.0, 60.0]),
)
def test_routes_match_bruteforce_oracle(
    plan: tuple[int, list[Contact]], data: st.DataObject, size_bits: float, window: float
) -> None:
    n, contacts = plan
    src = data.draw(st.integers(0, n - 1), label="src")
    others = [v for v in range(n) if v != src]
    dests = data.draw(st.sets(st.sampled_from(others), min_size=1, max_size=3), label="dests")
    t0 = data.draw(st.integers(0, 30), label="t0") / 2
    excluded = data.draw(st.sets(st.sampled_from(others), max_size=2), label="excluded")
    pairs = sorted({(c.frm, c.to) for c in contacts})
    broken = data.draw(st.sets(st.sampled_from(pairs), max_size=2), label="broken links")
    expected = oracle(contacts, src, dests, t0, size_bits, excluded, broken)
    table = RoutingTable(contacts, n, guide_window_s=window)
    for guided in (True, False):
        route = table.route(
            src,
            dests,
            t0,
            size_bits=size_bits,
            excluded_nodes=excluded,
            excluded_links=broken,
            guided=guided,
        )
        if expected is None:
            assert route is None
            continue
        assert route is not None
        assert (route.arrival_s, route.hops) == expected
        check_route(route, src, dests, t0, size_bits, excluded, broken)


@given(plan=plans(), data=st.data())
def test_deadline_cuts_exactly_at_the_earliest_arrival(
    plan: tuple[int, list[Contact]], data: st.DataObject
) -> None:
    n, contacts = plan
    src = data.draw(st.integers(0, n - 1))
    dst = data.draw(st.integers(0, n - 1).filter(lambda v: v != src))
    expected = oracle(contacts, src, {dst}, 0.0)
    table = RoutingTable(contacts, n)
    if expected is None:
        assert table.route(src, dst, deadline_s=1e9) is None
        return
    on_time = table.route(src, dst, deadline_s=expected[0])
    assert on_time is not None and on_time.arrival_s == expected[0]
    assert table.route(src, dst, deadline_s=expected[0] - 0.125) is None


@given(
    plan=plans(),
    data=st.data(),
    size_bits=st.sampled_from([0.0, 0.0, 1.0, 2.0, 4.0]),
)
def test_one_hop_answer_is_the_searchs_to_the_contact(
    plan: tuple[int, list[Contact]], data: st.DataObject, size_bits: float
) -> None:
    # When every contact out of the source ends in the destination set (a station asking for
    # any satellite), the table answers from numpy columns (routing._OneHop) instead of the
    # search: the same contact, departure and arrival, ties included (the coarse grid of
    # plans() makes equal arrivals over two pairs, and over two contacts of one pair, common).
    n, contacts = plan
    src = data.draw(st.sampled_from(sorted({c.frm for c in contacts})), label="src")
    near = {c.to for c in contacts if c.frm == src}
    extra = data.draw(st.sets(st.sampled_from(range(n)), max_size=2), label="extra") - {src}
    dests = frozenset(near | extra)
    t0 = data.draw(st.integers(0, 30), label="t0") / 2
    deadline = data.draw(st.sampled_from([None, 5.0, 12.5, 1e9]), label="deadline")
    table = RoutingTable(contacts, n)
    # the columns' time windows: answers inside one, and the fall-back to all the columns
    table.one_hop_window_s = data.draw(st.sampled_from([0.5, 1.5, 30.0]), label="window")
    limit = math.inf if deadline is None else deadline
    for guided in (True, False):
        want = table._search(src, set(dests), t0, size_bits, set(), set(), limit, guided)
        got = table.route(src, dests, t0, size_bits=size_bits, deadline_s=deadline, guided=guided)
        assert table._first_hops(src, dests) is not None
        assert got == want


@given(
    plan=plans(),
    data=st.data(),
    size_bits=st.sampled_from([0.0, 0.0, 1.0, 2.0, 4.0]),
)
def test_direct_hop_bound_changes_no_route(
    plan: tuple[int, list[Contact]], data: st.DataObject, size_bits: float
) -> None:
    # The search skips labels that arrive after the direct hop into the destinations
    # (RoutingTable._direct) and relaxes the source's pairs from numpy columns; the same
    # route must come out, ties included, as without either.
    n, contacts = plan
    src = data.draw(st.integers(0, n - 1), label="src")
    others = [v for v in range(n) if v != src]
    dests = data.draw(st.sets(st.sampled_from(others), min_size=1, max_size=3), label="dests")
    t0 = data.draw(st.integers(0, 30), label="t0") / 2
    excluded = data.draw(st.sets(st.sampled_from(others), max_size=1), label="excluded")
    deadline = data.draw(st.sampled_from([None, 4.0, 12.5]), label="deadline")
    table = RoutingTable(contacts, n)
    table.many_pairs = 1  # the source's pairs from numpy columns (RoutingTable._first_pairs)
    table.one_hop_window_s = data.draw(st.sampled_from([0.5, 1.5, 30.0]), label="window")
    plain = RoutingTable(contacts, n)
    plain.many_pairs = 10**9
    plain._direct = lambda *args: math.inf  # type: ignore[method-assign]
    for guided in (True, False):
        kw = {
            "size_bits": size_bits,
            "excluded_nodes": excluded,
            "guided": guided,
            "deadline_s": deadline,
        }
        assert table.route(src, dests, t0, **kw) == plain.route(src, dests, t0, **kw)


@given(
    plan=plans(),
    data=st.data(),
    size_bits=st.sampled_from([0.0, 0.0, 1.0, 2.0, 4.0]),
)
def test_a_via_node_bounds_the_search_and_changes_no_route(
    plan: tuple[int, list[Contact]], data: st.DataObject, size_bits: float
) -> None:
    # route(..., via=v) first routes src -> v -> destinations and searches only up to that
    # route's arrival: any v (on the best route, off it, unreachable, excluded) gives the
    # same route, ties included, as the search without it.
    n, contacts = plan
    src = data.draw(st.integers(0, n - 1), label="src")
    others = [v for v in range(n) if v != src]
    # via bounds the search when no direct hop does: often destinations src has no pair with
    far = sorted(set(others) - {c.to for c in contacts if c.frm == src})
    pool = far if far and data.draw(st.booleans(), label="far") else others
    dests = data.draw(st.sets(st.sampled_from(pool), min_size=1, max_size=3), label="dests")
    via = data.draw(st.integers(0, n - 1), label="via")
    t0 = data.draw(st.integers(0, 30), label="t0") / 2
    excluded = data.draw(st.sets(st.sampled_from(others), max_size=1), label="excluded")
    deadline = data.draw(st.sampled_from([None, 4.0, 12.5]), label="deadline")
    table = RoutingTable(contacts, n)
    table.many_pairs = data.draw(st.sampled_from([1, 64]), label="many_pairs")
    for guided in (True, False):
        kw = {"size_bits": size_bits, "excluded_nodes": excluded, "guided": guided,
              "deadline_s": deadline}
        assert table.route(src, dests, t0, via=via, **kw) == table.route(src, dests, t0, **kw)


@given(
    plan=plans(),
    times=st.lists(st.integers(-2, 60), min_size=1, max_size=8),
    size_bits=st.sampled_from([0.0, 1.0, 4.0]),
    common=st.integers(1, 4),
)
def test_cached_snapshots_are_the_plain_ones_entry_for_entry(
    plan: tuple[int, list[Contact]], times: list[int], size_bits: float, common: int
) -> None:
    # RoutingTable.snapshot_graph keeps the contacts cut at common boundary times in a cached
    # part and merges the others in per snapshot (routing._Snapshots); the matrix must be the
    # one built from all contacts at once, to the entry (same pairs, same least delays).
    n, contacts = plan
    arrays = routing._Arrays(contacts)
    snaps = routing._Snapshots(arrays, n, common=common)
    for t in times:
        want = snapshot_graph(contacts, t / 2, n_nodes=n, size_bits=size_bits)
        got = snaps.graph(t / 2, size_bits)
        assert got.shape == want.shape
        assert np.array_equal(got.indptr, want.indptr)
        assert np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data, want.data)


@given(
    plan=plans(),
    data=st.data(),
    reach=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, math.inf]),
    local=st.sampled_from([0.0, 0.25, 1.0, math.inf]),
)
def test_nearest_candidate_is_the_argmin_of_the_snapshot_tree(
    plan: tuple[int, list[Contact]], data: st.DataObject, reach: float, local: float
) -> None:
    # RoutingTable.nearest first runs its own Dijkstra out to `local` of delay, then scipy's
    # out to `reach`, then the whole graph; it must pick the candidate argmin over the full
    # tree picks (the first of equals), or report none.
    n, contacts = plan
    src = data.draw(st.integers(0, n - 1), label="src")
    t = data.draw(st.integers(0, 40), label="t") / 2
    cands = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    candidates = np.array(cands, dtype=np.intp)
    table = RoutingTable(contacts, n)
    table.local_reach_s = local
    table.many_pairs = data.draw(st.sampled_from([1, 64]), label="many_pairs")
    table.one_hop_window_s = data.draw(st.sampled_from([0.5, 1.5, 30.0]), label="window")
    delays = table.snapshot_paths(t, src).delays_s[candidates]
    # the candidates as an array, a list, or a list with the caller's own mask of them
    form = data.draw(st.sampled_from(["array", "list", "mask"]), label="form")
    if form == "array":
        best, delay = table.nearest(t, src, candidates, reach_s=reach)
    else:
        mask = bytes(1 if v in cands else 0 for v in range(n)) if form == "mask" else None
        best, delay = table.nearest(t, src, cands, reach_s=reach, mask=mask)
    if math.isfinite(delays.min()):
        assert best == cands[int(np.argmin(delays))] and delay == delays.min()
    else:
        assert delay == math.inf


def test_nearest_settles_every_candidate_as_near_as_the_first() -> None:
    # nearest()'s own Dijkstra stops after the first candidate it settles, but only once every
    # node as near is settled: of two candidates at equal delay it must answer the first in
    # the candidates' order (argmin), not the one the heap happens to settle first.
    contacts = [Contact(0.0, 10.0, 0, 1, 1.0, 0.5), Contact(0.0, 10.0, 0, 2, 1.0, 0.5),
                Contact(0.0, 10.0, 0, 3, 1.0, 0.25), Contact(0.0, 10.0, 3, 2, 1.0, 0.25)]
    table = RoutingTable(contacts, 4)
    table.local_reach_s = 1.0
    for order in ([2, 1], [1, 2]):
        best, delay = table.nearest(1.0, 0, np.array(order, dtype=np.intp), reach_s=1.0)
        assert (best, delay) == (order[0], 0.5)


def test_cached_snapshot_keeps_the_least_delay_of_a_pair_in_both_parts() -> None:
    # 0 -> 1 and 1 -> 2 are up all along in the cached part (cut at the common times 0, 10)
    # and again, briefly, in the volatile part: one slower, one faster.
    contacts = [
        Contact(0.0, 10.0, 0, 1, 1.0, 0.5),
        Contact(0.0, 10.0, 1, 2, 1.0, 2.0),
        Contact(3.0, 7.0, 0, 1, 1.0, 1.0),
        Contact(2.0, 6.0, 1, 2, 1.0, 0.25),
    ]
    snaps = routing._Snapshots(routing._Arrays(contacts), 3, common=2)
    assert len(snaps.stable.start) == 2 and len(snaps.volatile.start) == 2
    for t, d01, d12 in ((1.0, 0.5, 2.0), (5.0, 0.5, 0.25), (6.5, 0.5, 2.0)):
        graph = snaps.graph(t, 0.0)
        assert graph[0, 1] == d01 and graph[1, 2] == d12 and graph.nnz == 2


# -- hand-computed cases -------------------------------------------------------------------


def test_waiting_for_a_later_contact_beats_an_earlier_detour() -> None:
    # A line 0 - 1 - 2 - 3 and a detour 1 - 4 - 2. At node 1 (reached at t = 1) the direct
    # contact to 2 opens only at t = 5; the detour leaves at once but its 4 -> 2 contact opens
    # at t = 8. Waiting at 1 delivers at 7, the detour at 10.
    contacts = [
        Contact(0, 10, 0, 1, 1e6, 1.0),
        Contact(5, 10, 1, 2, 1e6, 1.0),
        Contact(0, 100, 2, 3, 1e6, 1.0),
        Contact(0, 10, 1, 4, 1e6, 1.0),
        Contact(8, 20, 4, 2, 1e6, 1.0),
    ]
    route = RoutingTable(contacts).route(0, 3, 0.0)
    assert route is not None
    assert route.nodes == (0, 1, 2, 3)
    assert route.departures_s == (0.0, 5.0, 6.0)
    assert route.arrivals_s == (1.0, 6.0, 7.0)
    assert route.arrival_s == 7.0 and route.hops == 3 and route.dst == 3
    assert route.contacts == (contacts[0], contacts[1], contacts[2])
    # Without the 1 -> 2 link, the detour is the only way.
    detour = RoutingTable(contacts).route(0, 3, 0.0, excluded_links=[(1, 2)])
    assert detour is not None
    assert detour.nodes == (0, 1, 4, 2, 3) and detour.arrival_s == 10.0


def test_hop_tie_break_keeps_a_later_arrival_with_fewer_hops() -> None:
    # Node 3 is reached at t = 3 over 0-1-2-3, or at t = 8 directly; both meet the 3 -> 4
    # contact opening at t = 10. An ordering on arrival time alone keeps only the t = 3 label
    # at node 3 and answers with 4 hops; the fewest-hops key (734.3-B-1 §3.2.8.1.4) wants 2.
    contacts = [
        Contact(0, 50, 0, 1, 1.0, 1.0),
        Contact(0, 50, 1, 2, 1.0, 1.0),
        Contact(0, 50, 2, 3, 1.0, 1.0),
        Contact(7, 50, 0, 3, 1.0, 1.0),
        Contact(10, 50, 3, 4, 1.0, 1.0),
    ]
    table = RoutingTable(contacts)
    for guided in (True, False):
        route = table.route(0, 4, 0.0, guided=guided)
        assert route is not None
        assert route.nodes == (0, 3, 4)
        assert route.arrival_s == 11.0 and route.hops == 2
        assert route.departures_s == (7.0, 10.0)
    # The earliest arrival at node 3 itself is still the 3-hop route.
    to_3 = table.route(0, 3, 0.0)
    assert to_3 is not None and to_3.arrival_s == 3.0 and to_3.hops == 3


def test_among_segments_of_one_link_the_first_usable_is_taken() -> None:
    # The same 0 -> 1 link cut into 1 s segments; the message is ready mid-way.
    contacts = [Contact(float(k), float(k + 1), 0, 1, 1.0, 0.5) for k in range(100)]
    table = RoutingTable(contacts)
    route = table.route(0, 1, 42.25)
    assert route is not None
    assert route.contacts == (contacts[42],) and route.arrival_s == 42.75
    # 0.5 bit at 1 bit/s no longer fits in what is left of segment 42, so segment 43 it is.
    sized = table.route(0, 1, 42.75, size_bits=0.5)
    assert sized is not None
    assert sized.contacts == (contacts[43],) and sized.departures_s == (43.0,)
    assert sized.arrival_s == 44.0
    # Longer than any segment: no route.
    assert table.route(0, 1, 0.0, size_bits=1.5) is None


def test_overlapping_contacts_of_one_pair_pick_the_earliest_arrival() -> None:
    # A long contact with a large OWLT, and a later-starting one that still arrives first.
    slow = Contact(0, 100, 0, 1, 1.0, 10.0)
    fast = Contact(2, 100, 0, 1, 1.0, 1.0)
    older_fast = Contact(0, 1, 0, 1, 1.0, 0.0)  # over before the message is ready
    route = RoutingTable([slow, fast, older_fast]).route(0, 1, 1.0)
    assert route is not None and route.contacts == (fast,) and route.arrival_s == 3.0
    # Ready exactly when a zero-OWLT contact ends: it is missed, the overlapping one is taken.
    short = Contact(1, 5, 0, 1, 1.0, 0.0)
    long = Contact(0, 50, 0, 1, 1.0, 3.0)
    missed = RoutingTable([short, long]).route(0, 1, 5.0)
    assert missed is not None and missed.contacts == (long,) and missed.arrival_s == 8.0


def test_transmission_must_end_before_the_contact_ends() -> None:
    c = Contact(0.0, 10.0, 0, 1, 100.0, 0.5)
    assert hop_arrival(c, 0.0, 1000.0) == 10.5  # 10 s of transmission ends exactly at end_s
    assert hop_arrival(c, 0.0, 1001.0) is None
    assert hop_arrival(c, 0.1, 1000.0) is None
    assert hop_arrival(c, -5.0, 0.0) == 0.5  # waits for the start
    assert hop_arrival(c, 9.999, 0.0) == 9.999 + 0.5
    assert hop_arrival(c, 10.0, 0.0) is None  # [start, end): the end instant is out
    later = Contact(20.0, 40.0, 0, 1, 100.0, 0.5)
    table = RoutingTable([c, later])
    route = table.route(0, 1, 0.1, size_bits=1000.0)
    assert route is not None and route.contacts == (later,)
    assert route.departures_s == (20.0,) and route.arrival_s == 30.5
    assert table.route(0, 1, 0.0, size_bits=1000.0).arrival_s == 10.5  # type: ignore[union-attr]
    assert table.route(0, 1, 0.0, size_bits=2001.0) is None
    # Each hop pays its own transmission time.
    chain = RoutingTable([Contact(0, 100, 0, 1, 10.0, 1.0), Contact(0, 100, 1, 2, 5.0, 1.0)])
    two = chain.route(0, 2, 0.0, size_bits=20.0)
    assert two is not None and two.arrivals_s == (3.0, 8.0)


def test_downlink_through_whichever_satellite_reaches_a_ground_station_first() -> None:
    nodes = NodeTable()
    gs_a, gs_b = nodes.add("gs-a", "ground"), nodes.add("gs-b", "ground")
    s1, s2, s3 = (nodes.add(f"sat{i}", "satellite") for i in (1, 2, 3))
    isl = 0.002
    contacts = [
        Contact(0, 3600, s1, s2, 1e9, isl),
        Contact(0, 3600, s2, s1, 1e9, isl),
        Contact(0, 3600, s2, s3, 1e9, isl),
        Contact(0, 3600, s3, s2, 1e9, isl),
        Contact(300, 600, s3, gs_a, 1e8, 0.004),  # s3 sees gs-a from t = 300
        Contact(100, 400, s1, gs_b, 1e8, 0.005),  # s1 sees gs-b from t = 100
        Contact(50, 90, s2, gs_b, 1e8, 0.003),  # s2 saw gs-b, before the data was ready
    ]
    table = RoutingTable(ContactPlan(nodes, contacts, 3600.0))
    both = table.route(s3, {gs_a, gs_b}, 95.0)
    assert both is not None
    assert both.nodes == (s3, s2, s1, gs_b) and both.dst == gs_b
    assert both.arrival_s == pytest.approx(100.005)
    only_a = table.route(s3, gs_a, 95.0)
    assert only_a is not None and only_a.nodes == (s3, gs_a) and only_a.arrival_s == 300.004
    # gs-b down: the set falls back to gs-a; s1 failed: same.
    assert table.route(s3, {gs_a, gs_b}, 95.0, excluded_nodes=[gs_b]) == only_a
    assert table.route(s3, {gs_a, gs_b}, 95.0, excluded_nodes=[s1]) == only_a
    # Before t = 90, s2's own pass over gs-b wins.
    early = table.route(s3, [gs_a, gs_b], 10.0)
    assert early is not None and early.nodes == (s3, s2, gs_b) and early.arrival_s == 50.003


def test_a_broken_isl_routes_the_other_way_round_a_ring() -> None:
    ring = 6
    contacts = [
        Contact(0, 100, i, j, 1e9, 0.002)
        for i in range(ring)
        for j in ((i + 1) % ring, (i - 1) % ring)
    ]
    table = RoutingTable(contacts)
    direct = table.route(0, 2, 0.0)
    assert direct is not None and direct.nodes == (0, 1, 2)
    around = table.route(0, 2, 0.0, excluded_links=[(1, 2), (2, 1)])
    assert around is not None and around.nodes == (0, 5, 4, 3, 2)
    assert around.arrival_s == pytest.approx(0.008)
    # Only the 2 -> 1 direction broken: 0 -> 2 is unaffected.
    assert table.route(0, 2, 0.0, excluded_links=[(2, 1)]) == direct
    assert table.route(0, 2, 0.0, excluded_nodes=[1, 3]) is None


def test_no_route_gives_none() -> None:
    contacts = [Contact(0, 10, 0, 1, 1.0, 1.0), Contact(20, 30, 2, 1, 1.0, 1.0)]
    table = RoutingTable(contacts, 4)
    assert table.route(0, 2, 0.0) is None  # no contact towards 2
    assert table.route(0, 3, 0.0) is None  # a node without contacts
    assert table.route(0, 1, 10.0) is None  # the only contact is over
    assert table.route(2, 1, 25.0, deadline_s=25.5) is None  # arrives at 26
    assert table.route(2, 1, 25.0, deadline_s=26.0) is not None
    assert table.route(0, 1, 0.0, excluded_nodes=[1]) is None
    assert table.route(0, [1, 2], 0.0, excluded_nodes=[1, 2]) is None
    assert earliest_arrival_route(contacts, 2, 0, 0.0) is None


def test_source_in_destinations_and_bad_arguments() -> None:
    table = RoutingTable([Contact(0, 10, 0, 1, 1.0, 1.0)], 3)
    here = table.route(1, {1, 2}, 4.0)
    assert here is not None and here.hops == 0 and here.nodes == (1,)
    assert here.arrival_s == 4.0 and here.delay_s == 0.0
    with pytest.raises(ValueError, match="not in this plan"):
        table.route(0, 3)
    with pytest.raises(ValueError, match="excluded"):
        table.route(0, 1, excluded_nodes=[0])
    with pytest.raises(ValueError, match="size_bits"):
        table.route(0, 1, size_bits=-1.0)
    with pytest.raises(ValueError, match="guide_window_s"):
        RoutingTable([], 2, guide_window_s=0.0)


def test_guided_bounds_hold_when_the_best_route_leaves_the_guide_window() -> None:
    # Guide window [0, 2): inside it, 1 -> 2 has only a slow contact (OWLT 10); a fast one
    # (OWLT 0.5) opens at t = 3, outside. A window bound not capped at the window's end would
    # rank node 1 at t = 10 and return the route via 3 (arrival 6) instead of 3.5.
    contacts = [
        Contact(0, 100, 0, 1, 1.0, 0.0),
        Contact(0, 1, 1, 2, 1.0, 10.0),
        Contact(3, 4, 1, 2, 1.0, 0.5),
        Contact(0, 100, 0, 3, 1.0, 0.0),
        Contact(5, 6, 3, 2, 1.0, 1.0),
    ]
    table = RoutingTable(contacts, guide_window_s=1.0)
    for guided in (True, False):
        route = table.route(0, 2, 0.0, guided=guided)
        assert route is not None
        assert route.nodes == (0, 1, 2) and route.arrival_s == 3.5


def test_guided_search_equals_plain_dijkstra_on_a_torus_with_ground_passes() -> None:
    # A 6 x 8 +Grid torus with ISLs cut into 30 s segments of varying OWLT, 3 ground stations
    # with passes, and a guide window short enough that routes cross window edges.
    rng = np.random.default_rng(7)
    planes, per_plane, n_gs, horizon = 6, 8, 3, 600.0
    n = n_gs + planes * per_plane

    def sat(p: int, s: int) -> int:
        return n_gs + (p % planes) * per_plane + (s % per_plane)

    contacts = []
    for p in range(planes):
        for s in range(per_plane):
            for a, b in ((sat(p, s), sat(p, s + 1)), (sat(p, s), sat(p + 1, s))):
                for t in np.arange(0.0, horizon, 30.0):
                    owlt = float(rng.uniform(0.001, 0.003))
                    contacts += [Contact(t, t + 30, a, b, 1e7, owlt)]
                    contacts += [Contact(t, t + 30, b, a, 1e7, owlt)]
    for g in range(n_gs):
        for t in np.arange(float(rng.uniform(0, 60)), horizon, 70.0):
            v = int(rng.integers(n_gs, n))
            owlt = float(rng.uniform(0.002, 0.01))
            contacts += [Contact(t, t + 40, g, v, 1e6, owlt), Contact(t, t + 40, v, g, 1e6, owlt)]
    table = RoutingTable(contacts, n, guide_window_s=10.0)
    gs = set(range(n_gs))
    for _ in range(40):
        src = int(rng.integers(n_gs, n))
        t0 = float(rng.uniform(0, horizon))
        size = float(rng.choice([0.0, 1e4]))
        for dst in (int(rng.integers(n_gs, n)), gs):
            dests = {dst} if isinstance(dst, int) else dst
            a = table.route(src, dst, t0, size_bits=size)
            b = table.route(src, dst, t0, size_bits=size, guided=False)
            if a is None or b is None:
                assert a is None and b is None
                continue
            assert (a.arrival_s, a.hops) == (b.arrival_s, b.hops)
            check_route(a, src, dests, t0, size)


# -- snapshot shortest paths ---------------------------------------------------------------


@st.composite
def snapshot_cases(draw: st.DrawFn) -> tuple[int, list[Contact], float]:
    """Up to 12 nodes; contacts up or not at t = 10; parallel contacts on a pair."""
    n = draw(st.integers(2, 12))
    contacts = []
    for _ in range(draw(st.integers(0, 40))):
        frm = draw(st.integers(0, n - 1))
        to = draw(st.integers(0, n - 2))
        to = to if to < frm else to + 1
        start = draw(st.sampled_from([0.0, 5.0, 10.0, 12.0]))
        end = start + draw(st.sampled_from([0.5, 5.0, 20.0]))
        owlt = draw(st.floats(0.0, 1.0, allow_nan=False))
        rate = draw(st.sampled_from([1e3, 1e6]))
        contacts.append(Contact(start, end, frm, to, rate, owlt))
    return n, contacts, draw(st.sampled_from([0.0, 1e3]))


@given(case=snapshot_cases(), src_pick=st.integers(0, 100))
def test_snapshot_paths_equal_networkx_dijkstra(
    case: tuple[int, list[Contact], float], src_pick: int
) -> None:
    n, contacts, size_bits = case
    t = 10.0
    src = src_pick % n
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    for c in contacts:
        if c.start_s <= t < c.end_s:
            w = c.owlt_s + size_bits / c.rate_bps
            if not graph.has_edge(c.frm, c.to) or graph[c.frm][c.to]["weight"] > w:
                graph.add_edge(c.frm, c.to, weight=w)
    lengths, _ = nx.single_source_dijkstra(graph, src)

    matrix = snapshot_graph(contacts, t, n_nodes=n, size_bits=size_bits)
    assert matrix.shape == (n, n) and matrix.nnz == graph.number_of_edges()
    paths = snapshot_paths(matrix, src)
    for v in range(n):
        if v not in lengths:
            assert math.isinf(paths.delay_to(v)) and paths.path_to(v) is None
            continue
        assert paths.delay_to(v) == pytest.approx(lengths[v], rel=1e-12, abs=1e-12)
        path = paths.path_to(v)
        assert path is not None and path[0] == src and path[-1] == v
        assert sum(graph[a][b]["weight"] for a, b in itertools.pairwise(path)) == (
            pytest.approx(lengths[v], rel=1e-12, abs=1e-12)
        )
        helper = snapshot_path(contacts, t, src, v, size_bits=size_bits)
        assert helper is not None and helper[1] == pytest.approx(lengths[v], abs=1e-12)
    table = RoutingTable(contacts, n)
    assert (table.snapshot_graph(t, size_bits=size_bits) != matrix).nnz == 0


def test_snapshot_on_a_hand_graph() -> None:
    contacts = [
        Contact(0, 10, 0, 1, 1e3, 0.010),
        Contact(0, 10, 1, 2, 1e3, 0.010),
        Contact(0, 10, 0, 2, 1e3, 0.030),
        Contact(0, 10, 0, 2, 1e3, 0.025),  # the better of two parallel contacts counts
        Contact(5, 10, 2, 3, 1e3, 0.0),  # zero delay is still a link
        Contact(0, 5, 3, 4, 1e3, 0.0),  # ends exactly at t = 5: down
    ]
    at5 = snapshot_path(contacts, 5.0, 0, 3)
    assert at5 is not None
    assert at5[0] == [0, 1, 2, 3] and at5[1] == pytest.approx(0.020)
    assert snapshot_path(contacts, 5.0, 0, 4) is None
    assert snapshot_path(contacts, 4.0, 0, 3) is None  # 2 -> 3 is not up yet
    # With 10 bits per hop (10 ms at 1 kbit/s), the direct 0 -> 2 link wins.
    sized = snapshot_path(contacts, 5.0, 0, 3, size_bits=10.0)
    assert sized is not None
    assert sized[0] == [0, 2, 3] and sized[1] == pytest.approx(0.025 + 0.010 + 0.010)
    table = RoutingTable(contacts, 5)
    tree = table.snapshot_paths(5.0, 0)
    assert tree.path_to(3) == [0, 1, 2, 3] and tree.path_to(0) == [0]
    cut = table.snapshot_graph(5.0, excluded_links=[(1, 2)], excluded_nodes=[4])
    assert snapshot_path(cut, 5.0, 0, 3) == ([0, 2, 3], pytest.approx(0.025))
