"""SA management over the link (issue 15, CCSDS 355.1-B-1): Extended Procedure PDUs sent by the
ground in telecommand packets on APID 0x103 are executed by the spacecraft end of the RF hop
only when the frame that carried them was authenticated by SDLS, and never on the SA that
authenticated them; replies come down on the same APID. The hop ends are fed directly
(sans-IO) through tests/test_sdls_hops.py's Wire."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sdls_hops import DOWN, UP, Wire, files, overhead, packets, rf_pair, sdls

from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace
from linkstack.sdls import SaState
from linkstack.sdls.ep import EP_APID, EpPacketizer, EpService, ep_pdu
from linkstack.sdls.pdu import (
    ReadArsn,
    ReadArsnReply,
    SaStatusReply,
    SaStatusRequest,
    SetArsnWindow,
    StopSa,
    decode_procedure,
)
from linkstack.spp.packet import PacketType, SpacePacket

__all__ = ["files"]  # the fixture, imported for pytest


def _replies(got: list[bytes]) -> list[object]:
    return [decode_procedure(pdu) for p in got if (pdu := ep_pdu(p)) is not None]


def test_authenticated_commands_are_executed_and_replies_come_down(
        files: tuple[Path, Path]) -> None:
    _, ground, space = rf_pair(files)
    wire = Wire(ground, space)
    up = EpPacketizer(PacketType.TC)
    data = packets(3, 0x100, 40)
    for pdu in (SaStatusRequest(DOWN).encode(), SetArsnWindow(DOWN, 100).encode(),
                ReadArsn(DOWN).encode(), StopSa(UP).encode()):
        ground.send_packet(up.wrap(pdu), now=0.0)
    for p in data:
        ground.send_packet(p, now=0.0)
    wire.run(until=5.0)
    # the other packets reach the layer above untouched, the EP packets do not
    assert wire.got[1] == data
    replies = _replies(wire.got[0])
    assert replies[0] == SaStatusReply(DOWN, SaState.OPERATIONAL)
    (read,) = [r for r in replies if isinstance(r, ReadArsnReply)]
    down_sa = space.downlink_sdls.engine.sadb[DOWN]  # type: ignore[union-attr]
    assert read.spi == DOWN and 0 < int.from_bytes(read.arsn, "big") <= down_sa.iv
    assert down_sa.arsn_window == 100  # Set ARSN Window executed
    # the uplink SA may not stop itself: refused, counted, still operational
    assert space.ep.counters == {"executed": 3, "refused": 1}
    assert "cannot manage itself" in space.ep.last_refusal
    assert space.uplink_sdls.engine.sadb[UP].state is SaState.OPERATIONAL  # type: ignore[union-attr]
    assert space.status()["sdls_ep"] == {"executed": 3, "refused": 1}


def test_commands_on_an_unauthenticated_uplink_are_refused(files: tuple[Path, Path]) -> None:
    """Downlink secured, uplink not: anyone could have sent the frame, so Stop SA of the
    downlink SA is refused and the downlink goes on."""
    cfg = RfHopConfig(downlink_sdls_overhead=overhead(files, DOWN))
    ground = RfGround(cfg, downlink_sdls=sdls(files, DOWN))
    space = RfSpace(cfg, downlink_sdls=sdls(files, DOWN))
    wire = Wire(ground, space)
    ground.send_packet(EpPacketizer(PacketType.TC).wrap(StopSa(DOWN).encode()), now=0.0)
    ground.send_packet(SpacePacket(0x100, 0, b"after").encode(), now=0.0)
    wire.run(until=3.0)
    assert space.ep.counters == {"unauthenticated": 1}
    assert space.downlink_sdls.engine.sadb[DOWN].state is SaState.OPERATIONAL  # type: ignore[union-attr]
    assert [SpacePacket.decode(p).data for p in wire.got[1]] == [b"after"]
    assert _replies(wire.got[0]) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([None, UP, 99]))
def test_any_ep_packet_is_counted_never_raises(pdu: bytes, via: int | None) -> None:
    """Fuzz: whatever the PDU octets and the authenticating SA, handle() returns a reply
    packet or None and counts exactly one outcome."""
    service = EpService([])
    packet = SpacePacket(EP_APID, 0, pdu or b"\x00", PacketType.TC).encode()
    reply = service.handle(packet, via)
    assert sum(service.counters.values()) == 1
    if via is None:
        assert service.counters == {"unauthenticated": 1} and reply is None
    if reply is not None:
        assert ep_pdu(reply) is not None
