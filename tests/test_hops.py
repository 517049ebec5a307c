"""Hop endpoints: every packet crosses exactly once and in order, over lossy, noisy channels."""

from __future__ import annotations

import pytest
from hop_wire import Wire
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import ConfigError
from linkstack.hops.isl import IslEndpoint, IslHopConfig
from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace
from linkstack.spp.packet import SpacePacket


def _packets(n: int, apid: int, size: int) -> list[bytes]:
    return [SpacePacket(apid, i, bytes([i % 256]) * (size + i % 7)).encode() for i in range(n)]


@pytest.mark.parametrize(("uplink_frame", "downlink_frame"),
                         [("tc", "tm"), ("uslp", "tm"), ("tc", "uslp"), ("uslp", "uslp")])
def test_rf_clean_round_trip_and_tags(uplink_frame: str, downlink_frame: str) -> None:
    cfg = RfHopConfig(clcw_interval=0.5, t1=0.5, uplink_frame=uplink_frame,
                      downlink_frame=downlink_frame)
    g, s = RfGround(cfg), RfSpace(cfg)
    w = Wire(g, s, delay=0.005, loss=0.0, flips=0.0, seed=1)
    up, down = _packets(12, 0x100, 80), _packets(9, 0x101, 700)
    for i, p in enumerate(up):
        g.send_packet(p, ("up", i), now=0.0)
    for i, p in enumerate(down):
        s.send_packet(p, ("down", i), now=0.0)
    w.run(5.0)
    assert w.got == (down, up)
    assert {u.kind for u in w.units} >= {"AD", downlink_frame.upper()}
    ad_tags = [u.tags for u in w.units if u.kind == "AD"]
    assert ad_tags == [(("up", i),) for i in range(12)]
    assert g.status()["cop1_state"] == "S1" and g.idle


@settings(max_examples=12, deadline=None)
@given(loss=st.floats(0.0, 0.3), flips=st.floats(0.0, 0.3), seed=st.integers(0, 10**6),
       uplink_frame=st.sampled_from(["tc", "uslp"]),
       downlink_frame=st.sampled_from(["tm", "uslp"]))
def test_rf_cop1_delivers_exactly_once_in_order(loss: float, flips: float, seed: int,
                                                uplink_frame: str, downlink_frame: str) -> None:
    cfg = RfHopConfig(clcw_interval=0.2, t1=0.3, transmission_limit=3, recovery_wait=0.2,
                      uplink_frame=uplink_frame, downlink_frame=downlink_frame)
    g, s = RfGround(cfg), RfSpace(cfg)
    w = Wire(g, s, delay=0.01, loss=loss, flips=flips, seed=seed)
    up = _packets(25, 0x100, 60)
    for i, p in enumerate(up):
        g.send_packet(p, i, now=0.0)
    w.run(400.0)
    assert w.got[1] == up  # exactly once, in order, whatever the alerts
    assert g.idle


def test_rf_config_errors() -> None:
    with pytest.raises(ConfigError) as e:
        RfHopConfig(window=20, farm_window=20)
    assert e.value.key == "window"
    with pytest.raises(ConfigError):
        RfHopConfig(farm_window=7)
    g = RfGround(RfHopConfig())
    with pytest.raises(ConfigError):
        g.send_packet(SpacePacket(1, 0, bytes(1100)).encode(), now=0.0)
    for kwargs, key in (({"uplink_frame": "aos"}, "uplink_frame"),
                        ({"downlink_frame": "aos"}, "downlink_frame"),
                        ({"uplink_max_frame_length": 1025}, "uplink_max_frame_length"),
                        ({"uplink_frame": "uslp", "uplink_max_frame_length": 70_000},
                         "uplink_max_frame_length")):
        with pytest.raises(ConfigError) as e:
            RfHopConfig(**kwargs)  # type: ignore[arg-type]
        assert e.value.key == key
    with pytest.raises(ConfigError) as e:
        RfGround(RfHopConfig(uplink_code="tm-rs-255-223-i1"))
    assert e.value.key == "uplink_code"


def test_rf_uslp_uplink_carries_long_frames_and_sets_vcf_counts() -> None:
    """USLP frames longer than a TC frame cross in one CLTU each; AD frames carry N(S) in a
    one-octet VC Frame Count, the Set V(R) control frame none (732.1-B-2 §4.1.2)."""
    from linkstack.frames.uslp import UslpFrame

    cfg = RfHopConfig(uplink_frame="uslp", uplink_max_frame_length=4000, clcw_interval=0.5,
                      t1=0.5)
    g, s = RfGround(cfg), RfSpace(cfg)
    assert cfg.max_packet_length == 4000 - 8 - 1 - 2
    w = Wire(g, s, delay=0.005, loss=0.0, flips=0.0, seed=2)
    up = [SpacePacket(0x100, i, bytes([i]) * (3000 + i)).encode() for i in range(5)]
    for p in up:
        g.send_packet(p, now=0.0)
    w.run(5.0)
    assert w.got[1] == up
    decoder = cfg.uplink_chain().decoder()
    frames = [UslpFrame.decode(ev.frame, cfg.uplink_frames().config)  # type: ignore[attr-defined]
              for u in w.units if u.kind == "AD" for ev in decoder.feed(u.data)]
    assert [f.vc_frame_count for f in frames] == list(range(5))
    assert {(f.vc_frame_count_length, f.bypass_sequence_control_flag,
             f.protocol_control_command_flag) for f in frames} == {(1, False, False)}


@settings(max_examples=12, deadline=None)
@given(loss=st.floats(0.0, 0.3), flips=st.floats(0.0, 0.5), seed=st.integers(0, 10**6))
def test_isl_sr_delivers_exactly_once_in_order(loss: float, flips: float, seed: int) -> None:
    cfg = IslHopConfig(code="tm-rs-255-223-i1", window=32, initial_rto=0.05)
    a, b = IslEndpoint(cfg, name="a"), IslEndpoint(cfg, name="b")
    w = Wire(a, b, delay=0.01, loss=loss, flips=flips, seed=seed)
    fwd, back = _packets(30, 0x100, 150), _packets(20, 0x101, 400)
    for i, p in enumerate(fwd):
        a.send_packet(p, i, now=0.0)
    for i, p in enumerate(back):
        b.send_packet(p, i, now=0.0)
    w.run(120.0)
    assert w.got == (back, fwd)
    assert a.idle and b.idle


def test_isl_frames_fill_the_codeblock() -> None:
    cfg = IslHopConfig()
    a = IslEndpoint(cfg)
    a.send_packet(SpacePacket(5, 0, b"x").encode(), "t", now=0.0)
    (unit,) = a.poll(0.0)
    assert unit.frame_octets == 1115 and len(unit.data) == 4 + 1275
    assert unit.tags == ("t",) and unit.kind == "SR-DATA"


def test_uncoded_and_shortened_chains_carry_packets() -> None:
    # coding off (ASM + randomizer only) on the downlink and the ISL, and a shortened RS
    # codeblock (virtual fill) set through the frame length
    rf = RfHopConfig(downlink_code="tm-uncoded", downlink_frame_length=300)
    isl = IslHopConfig(code="tm-uncoded", frame_length=600)
    short = IslHopConfig(code="tm-rs-255-223-i2", frame_length=400)  # Q = 23
    g, s = RfGround(rf), RfSpace(rf)
    w = Wire(g, s, delay=0.005, loss=0.0, flips=0.0, seed=3)
    down = _packets(6, 0x101, 200)
    for p in down:
        s.send_packet(p, None, now=0.0)
    w.run(3.0)
    assert w.got[0] == down
    for cfg in (isl, short):
        a, b = IslEndpoint(cfg), IslEndpoint(cfg)
        w = Wire(a, b, delay=0.01, loss=0.1, flips=0.0, seed=4)
        fwd = _packets(10, 0x100, 300)
        for p in fwd:
            a.send_packet(p, None, now=0.0)
        w.run(60.0)
        assert w.got[1] == fwd
        assert b.frame_length == cfg.frame_length


@pytest.mark.parametrize("kind", ["tm", "uslp"])
def test_idle_downlink_frames_still_bring_the_clcw_down(kind: str) -> None:
    """Nothing to send and a CLCW due: TM sends an Only Idle Data frame, USLP a frame of the
    VC filled by one idle packet; both carry the CLCW in the OCF and deliver no packet."""
    from linkstack.frames.clcw import Clcw
    from linkstack.hops.clcw_downlink import clcw_downlink
    from linkstack.mux.channel import OcfReceived

    down = clcw_downlink(kind, 0x2A, 3, 223)
    clcw = Clcw(vcid=3, report_value=77).encode()
    frame = down.next_frame(clcw)
    assert frame.idle and len(frame.data) == 223
    events = down.receive_frame(frame.data)
    assert events == [OcfReceived(7 if kind == "tm" else 3, clcw)]  # TM idle frames: VC 7
    assert down.frames_sent == 1


def test_downlink_frames_too_short_for_an_idle_packet() -> None:
    from linkstack.hops.clcw_downlink import clcw_downlink

    with pytest.raises(ConfigError) as e:
        clcw_downlink("uslp", 0x2A, 0, 20)
    assert e.value.key == "frame_length"
    with pytest.raises(ConfigError) as e:
        clcw_downlink("aos", 0x2A, 0, 223)
    assert e.value.key == "downlink_frame"


@settings(max_examples=40, deadline=None)
@given(loss=st.floats(0.0, 0.2), late=st.floats(0.0, 0.3), copies=st.floats(0.0, 0.3),
       seed=st.integers(0, 10**6), uplink_frame=st.sampled_from(["tc", "uslp"]),
       downlink_frame=st.sampled_from(["tm", "uslp"]))
def test_rf_cop1_exactly_once_with_reordering_and_copies(loss: float, late: float,
                                                         copies: float, seed: int,
                                                         uplink_frame: str,
                                                         downlink_frame: str) -> None:
    """Both directions lose, reorder and duplicate units (late copies of AD, BC frames and
    CLCWs included): every packet still arrives exactly once and in order, given the two
    settings such a link needs (a unit here is at most 0.4 s later than the 10 ms delay):
    recovery_wait >= 2 x (delay + lag), bc_hold >= lag."""
    cfg = RfHopConfig(clcw_interval=0.2, t1=0.3, transmission_limit=3, recovery_wait=0.9,
                      bc_hold=0.45, uplink_frame=uplink_frame, downlink_frame=downlink_frame)
    g, s = RfGround(cfg), RfSpace(cfg)
    w = Wire(g, s, delay=0.01, loss=loss, flips=0.0, seed=seed, late=late, copies=copies)
    up = _packets(25, 0x100, 60)
    for i, p in enumerate(up):
        g.send_packet(p, i, now=0.0)
    w.run(400.0)
    assert w.got[1] == up
    assert g.idle


@pytest.mark.parametrize("seed", [1, 6, 13])
def test_bc_hold_keeps_a_late_set_vr_copy_from_rewinding_farm1(seed: int) -> None:
    """These channel seeds deliver a late copy of a Set V(R) frame after newer AD frames:
    without the hold it moves FARM-1's V(R) under the operator's feet, and the operator, who
    sorts what FOP-1 gave up by the CLCW's N(R), skips packets (found by the property test
    above); with the hold every packet arrives exactly once."""
    def deliveries(bc_hold: float) -> tuple[list[bytes], list[bytes]]:
        cfg = RfHopConfig(clcw_interval=0.2, t1=0.3, transmission_limit=3, recovery_wait=0.9,
                          bc_hold=bc_hold)
        g, s = RfGround(cfg), RfSpace(cfg)
        w = Wire(g, s, delay=0.01, loss=0.0625, flips=0.0, seed=seed, late=0.21875,
                 copies=0.1875)
        up = _packets(25, 0x100, 60)
        for i, p in enumerate(up):
            g.send_packet(p, i, now=0.0)
        w.run(400.0)
        return w.got[1], up

    got, up = deliveries(0.0)
    assert got != up
    got, up = deliveries(0.45)
    assert got == up


def test_bc_hold_config() -> None:
    with pytest.raises(ConfigError) as e:
        RfHopConfig(bc_hold=-1.0)
    assert e.value.key == "bc_hold"
