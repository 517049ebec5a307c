"""SDLS on a hop (CCSDS 355.0-B-2): nothing from the link is trusted until authenticated.

One :class:`SdlsLayer` per hop direction and end sits between the transfer frames and the
coding chain (specs/architecture.md, "Where the newer layers sit")::

    sending end:    COP-1 / multiplexer / SR builds a clear frame
                    -> protect (ApplySecurity) -> coding chain (CLTU, CADU)
    receiving end:  coding chain -> verify (ProcessSecurity)
                    -> FARM-1 / demultiplexer (packets, the CLCW in the OCF) / SR (data, acks)

A frame that fails verification is counted by reason (:class:`~linkstack.sdls.RejectReason`)
and goes no further: neither its packets, nor its CLCW, nor its COP-1 control command, nor
its SR acknowledgement reach the layer above.

The clear frames are shorter than the physical channel's by the SA's overhead (Security
Header + Trailer): the layer above builds them with :attr:`SdlsLayer.clear`. On the
fixed-length channels (TM, fixed USLP) every frame of the channel must then carry the same
overhead, so the SA has to serve every VC the end sends on — the TM downlink's Only Idle
Data frames on VC 7 included, since they bring the CLCW down.

COP-1 and anti-replay. ApplySecurity runs once per *transmission*: each retransmission of an
AD frame by FOP-1 (and each BC frame) is secured again and carries a fresh IV/ARSN. The
receiver's window (:class:`linkstack.sdls.sa.ReplayWindow`) accepts each value once: values
up to ``arsn_window`` above the highest accepted, and values less than ``arsn_window`` below it
that were not accepted yet (frames reordered on the link). So a first copy that SDLS accepted
but FARM-1 refused (out of its window, Wait, Lockout) does not make the retransmission look like
a replay: the retransmission's sequence number is new. A cached secured frame, retransmitted as
is, would be rejected as REPLAY and COP-1 would never get it through. What the receiver does
reject: second copies of a frame (duplicates, replays), frames from further back than the
window — COP-1 retransmits those frames anyway, selective repeat resends them — and any frame
whose number jumps more than the SA's ``arsn_window`` ahead: the window must therefore exceed
the longest run of frames the receiver can miss (losses, outages, retransmissions lost with
them).

The OCF is outside the protected part of a frame (355.0-B-2: the Security Trailer goes before
it), so the CLCW is trusted because the frame carrying it verified — not because the MAC
covers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from linkstack.codecs.chain import FrameDecoded
from linkstack.errors import ConfigError
from linkstack.sdls.engine import FrameAccepted, SdlsEngine, SdlsRejected
from linkstack.sdls.layout import ChannelConfig
from linkstack.sdls.sa import SaDatabase, SaState

__all__ = ["HopSdls", "SdlsLayer", "clear_frames", "sdls_status"]


@dataclass(frozen=True)
class HopSdls:
    """SDLS for one direction of a hop, at one end.

    Attributes:
        sadb: this end's SA database for the direction. Give it the SAs of this direction
            only (:func:`linkstack.sdls.load_sa_file` with ``spis``): the receiving end then
            verifies nothing secured for another direction or hop — not even its own frames
            reflected back to it. A sending end's database may carry a counter store.
        spi: the SA the sending end applies; its overhead sets the clear frame length at both
            ends. The receiving end accepts any operational SA of ``sadb`` serving the
            channel (a new SA started at both ends takes over without a restart).
    """

    sadb: SaDatabase
    spi: int


class SdlsLayer:
    """ApplySecurity / ProcessSecurity for one hop direction at one end.

    Args:
        sdls: the SA database and SPI.
        channel: the physical channel's managed parameters (the secured frames).
        scid / vcids: the channel's spacecraft and the VCs this end sends (or receives) on;
            the SA must serve all of them.
        key: the setting named in errors (``"uplink_sdls"``...).
    """

    def __init__(self, sdls: HopSdls, channel: ChannelConfig, *, scid: int,
                 vcids: Iterable[int], key: str = "sdls") -> None:
        sa = sdls.sadb.get(sdls.spi)
        if sa is None:
            raise ConfigError(f"no SA {sdls.spi} in the SA database", key=key)
        self.engine: SdlsEngine[Any] = SdlsEngine(sdls.sadb, channel)
        ft = self.engine.frame_type
        label = f"SA {sa.spi}" + (f" ({sa.name})" if sa.name else "")
        if sa.frame is not ft:
            raise ConfigError(f"{label} protects {sa.frame.value.upper()} frames, this hop "
                              f"direction carries {ft.value.upper()} frames", key=key)
        if sa.scid != scid:
            raise ConfigError(f"{label} serves spacecraft {sa.scid}, the hop's SCID is {scid}",
                              key=key)
        missing = sorted(set(vcids) - sa.vcids)
        if missing:
            raise ConfigError(f"{label} does not serve {ft.value.upper()} VC "
                              f"{', '.join(map(str, missing))} (every frame on the channel is "
                              "secured)", key=key)
        if sa.state is not SaState.OPERATIONAL:
            raise ConfigError(f"{label} is {sa.state.name}, not OPERATIONAL", key=key)
        if sdls.sadb.active_key(sa) is None:
            raise ConfigError(f"{label}: key {sa.key_id} is not ACTIVE", key=key)
        self.spi = sa.spi
        self.last_spi: int | None = None
        """The SA that authenticated the last frame :meth:`verify` accepted (what SDLS
        Extended Procedure commands in that frame are executed "via")."""
        self.overhead = sa.overhead
        try:
            self.clear: ChannelConfig = self.engine.clear_channel(sa.spi)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc.reason}", key=key) from None

    def protect(self, frame: bytes, now: float) -> bytes:
        """The secured frame to transmit (ApplySecurity; a fresh IV/ARSN on every call)."""
        return self.engine.apply(frame, now, spi=self.spi)

    def verify(self, frame: bytes, now: float) -> bytes | SdlsRejected:
        """The clear frame, or the rejection (counted by reason; nothing else to do with it)."""
        result = self.engine.process(frame, now)
        if isinstance(result, FrameAccepted):
            self.last_spi = result.spi
            return result.frame
        return result

    @property
    def rejected(self) -> dict[str, int]:
        """Frames rejected so far, by :class:`~linkstack.sdls.RejectReason` name."""
        return {r.name: n for r, n in sorted(self.engine.counters.rejected.items()) if n}


def sdls_status(tx: SdlsLayer | None, rx: SdlsLayer | None) -> dict[str, object]:
    """The SDLS entries of an endpoint's ``status()`` (none without SDLS)."""
    out: dict[str, object] = {}
    if tx is not None:
        out["sdls_applied"] = tx.engine.counters.applied
    if rx is not None:
        out["sdls_accepted"] = rx.engine.counters.accepted
        out["sdls_rejected"] = rx.rejected
    return out


def clear_frames(events: Iterable[object], sdls: SdlsLayer | None, now: float,
                 notes: list[object]) -> Iterator[bytes]:
    """The frames the coding chain decoded (``events``), each once it passed SDLS (all of
    them on a hop direction without SDLS), in order — what every receiving end of a hop works
    on. The chain's other events and the SDLS rejections go to ``notes``: a rejected frame
    goes no further."""
    for ev in events:
        if not isinstance(ev, FrameDecoded):
            notes.append(ev)
            continue
        if sdls is None:
            yield ev.frame
            continue
        clear = sdls.verify(ev.frame, now)
        if isinstance(clear, SdlsRejected):
            notes.append(clear)
            continue
        yield clear
