"""End-to-end round trip: the breakdown sums to the total, and at BER 0 the protocol overhead
over the physical bound is exactly what header, coding and ASM sizes and the link rates say."""

from __future__ import annotations

import math

import pytest

from linkstack.codecs.chain import CodingChain
from linkstack.errors import ConfigError
from linkstack.frames.tc import TcFrame
from linkstack.frames.uslp import UslpFrame
from linkstack.payload.backend import Generation, RecordedBackend
from linkstack.payload.client import PromptClient
from linkstack.payload.endpoint import EndpointConfig, ModelEndpoint
from linkstack.payload.messages import GenerationParams
from linkstack.payload.transport import TransportConfig
from linkstack.sims.roundtrip import run_roundtrip
from linkstack.sims.scenario import load_scenario, parse_scenario
from linkstack.sims.topology import plan_path, rf_config

R_UP, R_DOWN, R_ISL = 64_000.0, 2_000_000.0, 1.0e9
D_RF, D_ISL = 0.004, 0.006
CODE_GROUND, CODE_SAT = 8e9, 4e8
ANSWER = Generation("Paris is the capital of France.", 12, 8, 1.25)


def _link(src: str, dst: str, rate: float, delay: float, stack: dict) -> dict:
    return {"from": src, "to": dst, "rate_bps": rate, "ber": 0.0,
            "propagation": {"model": "fixed", "delay_s": delay}, "stack": stack}


def clean_scenario(isl_code: str = "tm-rs-255-223-i5", down_code: str = "tm-rs-255-223-i1",
                   up_code: str = "tc-bch-rand") -> dict:
    return {
        "scenario": {"name": "clean", "seed": 7},
        "nodes": {"ground": {"kind": "ground_station"},
                  "relay": {"kind": "satellite", "altitude_km": 700.0},
                  "sat1": {"kind": "satellite", "altitude_km": 700.0}},
        "links": {
            "uplink": _link("ground", "relay", R_UP, D_RF, {"frame": "tc", "coding": up_code}),
            # no periodic CLCW report during the test: nothing else competes for the downlink
            "downlink": _link("relay", "ground", R_DOWN, D_RF, {
                "frame": "tm", "coding": down_code, "arq_params": {"clcw_interval": 1e6}}),
            "isl-forward": _link("relay", "sat1", R_ISL, D_ISL,
                                 {"frame": "uslp", "coding": isl_code, "arq": "sr"}),
            "isl-return": _link("sat1", "relay", R_ISL, D_ISL,
                                {"frame": "uslp", "coding": isl_code, "arq": "sr"}),
        },
        "run": {"prompts": ["What is the capital of France?", "Name a planet."],
                "max_tokens": 16, "coding_rate_ground_bps": CODE_GROUND,
                "coding_rate_satellite_bps": CODE_SAT},
    }


def _message_octets(prompt: str) -> tuple[int, int]:
    """Octets of the encoded prompt and result messages, made with the payload codec."""
    cfg = TransportConfig()
    client = PromptClient(cfg)
    _, packets = client.ask(prompt, 0.0, params=GenerationParams(max_tokens=16))
    endpoint = ModelEndpoint(RecordedBackend({}, default=ANSWER), EndpointConfig(transport=cfg))
    for p in packets:
        endpoint.receive_packet(p, 0.0)
    job = endpoint.next_job(0.0)
    assert job is not None
    result = endpoint.complete(job, ANSWER, 0.0)
    assert len(packets) == 1 and len(result) == 1
    return len(packets[0]) - 6, len(result[0]) - 6


def test_plan_path_of_the_default_scenario() -> None:
    hops = plan_path(load_scenario("default"))
    assert [(h.name, h.kind, h.back.name) for h in hops] == [
        ("uplink", "rf", "downlink"), ("isl-forward", "isl", "isl-return")]


@pytest.mark.parametrize(("stack", "key"), [
    ({"frame": "aos"}, "links.uplink.stack.frame"),
    ({"frame": "tc", "arq": "sr"}, "links.uplink.stack.frame"),  # SR runs over USLP only
    ({"frame": "uslp", "arq": "go-back-n"}, "links.uplink.stack.arq"),
    ({"frame": "aos", "arq": "cop-1"}, "links.uplink.stack.frame"),
])
def test_plan_path_errors_name_the_key(stack: dict[str, str], key: str) -> None:
    data = clean_scenario()
    data["links"]["uplink"]["stack"].update(stack)
    with pytest.raises(ConfigError) as exc:
        plan_path(parse_scenario(data))
    assert exc.value.key == key


def test_plan_path_kinds_follow_the_arq() -> None:
    data = clean_scenario()
    data["links"]["uplink"]["stack"].update({"frame": "uslp", "arq": "cop-1"})
    assert [h.kind for h in plan_path(parse_scenario(data))] == ["rf", "isl"]
    data["links"]["downlink"]["stack"]["frame"] = "uslp"
    assert [h.kind for h in plan_path(parse_scenario(data))] == ["rf", "isl"]
    data["links"]["downlink"]["stack"]["frame"] = "aos"
    with pytest.raises(ConfigError) as exc:
        plan_path(parse_scenario(data))
    assert exc.value.key == "links.downlink.stack.frame"


@pytest.mark.parametrize(("uplink_frame", "downlink_frame"),
                         [("tc", "tm"), ("uslp", "tm"), ("uslp", "uslp")])
def test_overhead_at_ber_zero_is_exactly_headers_coding_and_asm(uplink_frame: str,
                                                                downlink_frame: str) -> None:
    data = clean_scenario()
    data["links"]["uplink"]["stack"].update({"frame": uplink_frame, "arq": "cop-1"})
    data["links"]["downlink"]["stack"]["frame"] = downlink_frame
    sc = parse_scenario(data)
    report = run_roundtrip(sc, RecordedBackend({}, default=ANSWER))
    up_chain = CodingChain.from_name("tc-bch-rand")
    isl_chain = CodingChain.from_name("tm-rs-255-223-i5")
    down_chain = CodingChain.from_name("tm-rs-255-223-i1")
    for p in report.prompts:
        assert p.status == "ok" and p.answer == ANSWER.text
        assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)
        m_prompt, m_result = _message_octets(p.prompt)
        # Uplink: one packet (6-octet header) in one TC frame (5-octet header + 2 FECF) or
        # USLP frame (7-octet header + 1-octet VC Frame Count + 1-octet TFDF header + 2
        # FECF), in a CLTU: start sequence 2 + 8 octets per 7 of frame + tail 8 (231.0-B-3).
        header = 5 if uplink_frame == "tc" else 7 + 1 + 1
        tc_frame = header + 6 + m_prompt + 2
        cltu = 2 + 8 * math.ceil(tc_frame / 7) + 8
        if uplink_frame == "tc":
            frame = TcFrame(0x2A, 0, 0, bytes(6 + m_prompt)).encode()
        else:
            frame = UslpFrame(0x2A, 0, data_field=bytes(6 + m_prompt),
                              vc_frame_count_length=1).encode()
        assert len(frame) == tc_frame and len(up_chain.encode_frame(frame)) == cltu
        # ISL and downlink: one fixed-length frame per CADU = ASM 4 + RS codeblock.
        isl_cadu = 4 + isl_chain.codeblock_length
        down_cadu = 4 + down_chain.codeblock_length
        assert (isl_cadu, down_cadu) == (4 + 1275, 4 + 255)
        serialization_overhead = (
            (cltu - m_prompt) * 8 / R_UP
            + (isl_cadu - m_prompt) * 8 / R_ISL + (isl_cadu - m_result) * 8 / R_ISL
            + (down_cadu - m_result) * 8 / R_DOWN)
        # Coding compute: every unit is encoded by its sender and decoded by its receiver.
        coding = (cltu * 8 / CODE_GROUND + cltu * 8 / CODE_SAT          # uplink
                  + 4 * isl_cadu * 8 / CODE_SAT                          # ISL both ways
                  + down_cadu * 8 / CODE_SAT + down_cadu * 8 / CODE_GROUND)  # downlink
        assert p.total_s - p.bound_s == pytest.approx(serialization_overhead + coding,
                                                      rel=1e-9, abs=1e-9)
        assert p.breakdown["onboard.inference"] == ANSWER.inference_s
        assert p.breakdown["onboard.queueing"] == pytest.approx(0.0, abs=1e-12)
        assert p.ratio >= 1.0
        for row, value in p.breakdown.items():
            if row.endswith(("queueing", "arq_wait")):
                assert value == pytest.approx(0.0, abs=1e-9), row


def test_same_seed_same_timings_and_lossy_links_still_answer() -> None:
    data = clean_scenario()
    for name in data["links"]:
        data["links"][name]["ber"] = 2e-4
    backend = RecordedBackend({}, default=ANSWER)
    a = run_roundtrip(parse_scenario(data), backend)
    b = run_roundtrip(parse_scenario(data), backend)
    assert [p.total_s for p in a.prompts] == [p.total_s for p in b.prompts]
    for p in a.prompts:
        assert p.status == "ok" and p.answer == ANSWER.text
        assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)
        assert p.total_s >= p.bound_s


def test_duplicated_frames_on_every_link_change_nothing_above_the_frames() -> None:
    """Half of all units received twice (copies up to ~2 ms late): COP-1 (FARM-1), SR and
    the TM demultiplexer each drop the copies; answers and timings are those of a clean
    run, since a copy only ever arrives after its original."""
    clean = run_roundtrip(parse_scenario(clean_scenario()), RecordedBackend({}, default=ANSWER))
    data = clean_scenario()
    for name in data["links"]:
        data["links"][name]["duplicate"] = {"fraction": 0.5, "mean_delay_s": 0.002}
    report = run_roundtrip(parse_scenario(data), RecordedBackend({}, default=ANSWER))
    assert [(p.status, p.answer) for p in report.prompts] == [
        ("ok", ANSWER.text)] * len(clean.prompts)
    assert [p.total_s for p in report.prompts] == [p.total_s for p in clean.prompts]
    ground, space = report.link_status["rf-ground"], report.link_status["rf-space"]
    assert ground["frames_duplicate"] > 0
    assert ground["frames_received"] == space["units_sent"]


def test_cop1_defaults_follow_the_worst_lag_of_links_that_reorder_or_duplicate() -> None:
    """bc_hold = worst extra lag and recovery_wait = 2 x (delay + lag) (RfHopConfig's rule),
    the lag being 10 mean extra delays plus, for a copy, one longest unit's serialization."""
    data = clean_scenario()
    hop = plan_path(parse_scenario(data))[0]
    assert (rf_config(hop).bc_hold, rf_config(hop).recovery_wait) == (0.0, 1.0)
    data["links"]["uplink"]["duplicate"] = {"fraction": 0.5, "mean_delay_s": 0.1}
    cfg = rf_config(plan_path(parse_scenario(data))[0])
    cltu = 2 + 8 * math.ceil(1024 / 7) + 8  # the longest CLTU: a 1024-octet TC frame
    lag = 8 * cltu / R_UP + 10 * 0.1
    assert cfg.bc_hold == pytest.approx(lag)
    assert cfg.recovery_wait == pytest.approx(2 * (D_RF + lag))
    data["links"]["downlink"]["reorder"] = {"fraction": 0.1, "mean_delay_s": 0.5}
    assert rf_config(plan_path(parse_scenario(data))[0]).bc_hold == pytest.approx(5.0)
    data["links"]["uplink"]["stack"]["arq_params"] = {"bc_hold": 0.25, "recovery_wait": 3.0}
    cfg = rf_config(plan_path(parse_scenario(data))[0])
    assert (cfg.bc_hold, cfg.recovery_wait) == (0.25, 3.0)  # explicit settings win


@pytest.mark.parametrize("seed", range(12))
def test_cop1_recovers_with_late_duplicates_and_a_noisy_uplink(seed: int) -> None:
    """A noisy uplink (T1 alerts, lost CLTUs) that also delivers half the units a second
    time, up to seconds late (late copies of Set V(R) and of old AD frames): the RF hop's
    operator recovers after every alert and every prompt is answered."""
    data = clean_scenario()
    data["scenario"]["seed"] = seed
    data["links"]["uplink"]["ber"] = 5e-3
    data["links"]["uplink"]["duplicate"] = {"fraction": 0.5, "mean_delay_s": 1.0}
    data["links"]["uplink"]["stack"]["arq_params"] = {
        "t1_initial": 0.3, "transmission_limit": 2, "recovery_wait": 0.2}
    data["links"]["downlink"]["stack"]["arq_params"] = {"clcw_interval": 0.5}
    data["run"]["prompts"] = ["What is the capital of France?"] * 6
    report = run_roundtrip(parse_scenario(data), RecordedBackend({}, default=ANSWER))
    assert [(p.status, p.answer) for p in report.prompts] == [("ok", ANSWER.text)] * 6
    for p in report.prompts:
        assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)
        assert p.total_s >= p.bound_s
    ground = report.link_status["rf-ground"]
    assert ground["recoveries"] >= (1 if ground["alerts"] else 0)  # most seeds see alerts
    assert ground["cop1_state"] == "S1" and ground["backlog"] == 0


@pytest.mark.model
def test_real_model_round_trip_through_the_default_scenario() -> None:
    from linkstack.payload.backend import LlamaCppBackend

    sc = load_scenario("default", ["run.max_tokens=12"])
    report = run_roundtrip(sc, LlamaCppBackend(), prompts=["What is the capital of France?"])
    (p,) = report.prompts
    assert p.status == "ok" and p.answer.strip()
    assert 0 < p.completion_tokens <= 12 and p.prompt_tokens > 0
    assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)
    assert p.ratio >= 1.0 and p.breakdown["onboard.inference"] > 0


def test_pcap_of_a_run_holds_every_unit_frame_and_packet(tmp_path) -> None:
    from linkstack.capture.pcap import read_pcap
    from linkstack.frames.tm import TmChannelConfig, TmFrame

    path = tmp_path / "run.pcap"
    sc = parse_scenario(clean_scenario())
    report = run_roundtrip(sc, RecordedBackend({}, default=ANSWER), prompts=["Hi?"], pcap=path)
    (p,) = report.prompts
    records = list(read_pcap(path))
    layers = [r.layer for r in records]
    # one prompt packet handed to the uplink and the ISL, one result packet back the same way
    spp = [r for r in records if r.layer == "spp"]
    assert [(r.src, r.dst) for r in spp] == [("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.3"),
                                              ("10.0.0.3", "10.0.0.2"), ("10.0.0.2", "10.0.0.1")]
    assert {"cltu", "tc", "cadu", "tm", "uslp", "spp"} <= set(layers)
    times = [r.time_ns for r in records]
    assert times == sorted(times)
    assert (times[-1] - times[0]) / 1e9 < p.total_s  # the last unit leaves before the answer lands
    tm = [TmFrame.decode(r.unit, TmChannelConfig(frame_length=223, has_ocf=True))
          for r in records if r.layer == "tm"]
    assert tm and all(f.ocf is not None for f in tm)


@pytest.mark.parametrize(("key", "value", "named"), [
    ("links.downlink.stack.coding", "tm-rs-255-223-i1", "links.downlink.stack.frame_length"),
    ("links.isl-forward.stack.coding", "tm-rs-255-223-i7", "links.isl-forward.stack.coding"),
    ("links.uplink.stack.coding", "tc-foo", "links.uplink.stack.coding"),
    ("links.uplink.stack.arq_params.farm_window_width", "7",
     "links.uplink.stack.arq_params.farm_window_width"),
])
def test_bad_stack_settings_name_the_scenario_key(key: str, value: str, named: str) -> None:
    sc = load_scenario("default", [f"{key}={value}"])
    with pytest.raises(ConfigError) as exc:
        run_roundtrip(sc, RecordedBackend({}, default=ANSWER), prompts=["x"])
    assert exc.value.key == named


STREAMED = Generation("Paris is the capital of France.", 12, 8, 1.25, ANSWER.finish_reason,
                      ((0.5, 1, 5), (0.6, 2, 8), (0.7, 3, 12), (0.9, 5, 20), (1.2, 8, 31)))


def test_streamed_answer_first_token_arrives_before_the_result() -> None:
    """At BER 0 every one-packet message fills one frame per hop, so the first partial
    result (cut at the first piece, 0.5 s into the 1.25 s inference) reaches the ground
    exactly 0.75 s before the Result; the breakdown still follows the Result."""
    data = clean_scenario()
    data["run"].update({"stream_tokens": 3, "stream_interval_s": 0})
    report = run_roundtrip(parse_scenario(data), RecordedBackend({}, default=STREAMED))
    for p in report.prompts:
        assert p.status == "ok" and p.answer == STREAMED.text
        # cut after tokens 1 (first text), 5 (>= 3 more) and 8
        assert p.segments == 3
        assert p.ttft_s == pytest.approx(p.total_s - (1.25 - 0.5), abs=1e-9)
        assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)
    assert report.summary()["ttft_s"]["median"] < report.summary()["total_s"]["median"]


def test_no_streaming_first_token_is_the_result() -> None:
    data = clean_scenario()
    data["run"].update({"stream_tokens": 0, "stream_interval_s": 0})
    report = run_roundtrip(parse_scenario(data), RecordedBackend({}, default=STREAMED))
    for p in report.prompts:
        assert p.segments == 0 and p.ttft_s == p.total_s


@pytest.mark.parametrize(("key", "value"), [("stream_tokens", -1), ("stream_tokens", 1.5),
                                            ("stream_interval_s", -0.1),
                                            ("stream_interval_s", "fast")])
def test_stream_keys_are_checked(key: str, value: object) -> None:
    data = clean_scenario()
    data["run"][key] = value
    with pytest.raises(ConfigError) as exc:
        parse_scenario(data)
    assert exc.value.key == f"run.{key}"


@pytest.mark.model
def test_real_model_streams_through_the_default_scenario() -> None:
    from linkstack.payload.backend import LlamaCppBackend

    sc = load_scenario("default", ["run.max_tokens=24", "run.stream_tokens=4"])
    # the one-sentence format: an answer of several segments (qa-short says three words)
    report = run_roundtrip(sc, LlamaCppBackend(prompt_format="qa-few-shot"),
                           prompts=["Name the largest ocean on Earth."])
    (p,) = report.prompts
    assert p.status == "ok" and p.segments >= 2
    assert 0 < p.ttft_s < p.total_s - 0.1
    assert sum(p.breakdown.values()) == pytest.approx(p.total_s, abs=1e-9)


# -- CallbackPort: the task-free port of the constellation -----------------------------------


class _NoAccounting:
    def account(self, *args: object) -> None:
        return None


def _hop_through_ports(callback: bool, capacity: int | None, ber: float = 0.0
                       ) -> list[tuple[float, bytes]]:
    """30 packets over the default scenario's RF hop (COP-1 up, TM with the CLCW down), with
    the uplink's queue bounded to ``capacity`` ('block'), through Port tasks or CallbackPorts:
    what reaches the spacecraft, and when."""
    import dataclasses

    import trio

    from linkstack.sims import engine
    from linkstack.sims.roundtrip import CallbackPort, Port
    from linkstack.sims.topology import build_endpoints
    from linkstack.spp.packet import SpacePacket

    hop = plan_path(load_scenario("default"))[0]
    fwd = dataclasses.replace(hop.forward, queue_capacity=capacity, queue_policy="block",
                              ber=ber)
    hop = dataclasses.replace(hop, forward=fwd)
    packets = [SpacePacket(0x100, i, bytes([i]) * (40 + 13 * i)).encode() for i in range(30)]
    got: list[tuple[float, bytes]] = []

    async def main() -> None:
        near, far = build_endpoints(hop)
        run = _NoAccounting()
        on_far = lambda ps, t: got.extend((t, p) for p in ps)  # noqa: E731
        async with trio.open_nursery() as nursery:
            if callback:
                ports: dict[str, CallbackPort] = {}
                up = fwd.build_direction(on_delivery=lambda d: ports["far"].deliver(d))
                down = hop.back.build_direction(on_delivery=lambda d: ports["near"].deliver(d))
                ports["near"] = CallbackPort(run, near, up, hop.back.name, lambda ps, t: None)
                ports["far"] = CallbackPort(run, far, down, fwd.name, on_far)
                first: Port = ports["near"]
                ports["far"].kick()
            else:
                up, down = fwd.build_direction(), hop.back.build_direction()
                first = Port(run, near, up, hop.back.name, math.inf, lambda ps, t: None)
                second = Port(run, far, down, fwd.name, math.inf, on_far)
                for d, port in ((up, second), (down, first)):
                    async def pump(d=d, port=port) -> None:  # type: ignore[no-untyped-def]
                        async for delivery in d.receive_channel:
                            await port.receive(delivery)
                    nursery.start_soon(pump)
                nursery.start_soon(first.transmit_loop)
                nursery.start_soon(second.transmit_loop)
            await trio.sleep(1.0)
            for i, p in enumerate(packets):
                near.send_packet(p, i, now=engine.now())
            first.kick()
            await trio.sleep(120.0)
            nursery.cancel_scope.cancel()

    engine.run_simulation(main, seed=3)
    assert [p for _, p in got] == packets  # every packet once, in order
    return got


@pytest.mark.parametrize("capacity", [None, 1, 4])
@pytest.mark.parametrize("ber", [0.0, 3e-5])
def test_callback_port_carries_what_the_task_port_carries_at_the_same_times(
        capacity: int | None, ber: float) -> None:
    """A CallbackPort is Port's transmit task and receive step as scheduler callbacks: over a
    COP-1 hop, with or without a full 'block' queue holding units back, and with bit errors
    that make FOP-1 retransmit, the same packets arrive at the same virtual times."""
    assert _hop_through_ports(True, capacity, ber) == _hop_through_ports(False, capacity, ber)
