"""Spec page of Space Data Link Security (CCSDS 355.0-B-2, SA management of 355.1-B-1).

The Security Header and Trailer are drawn from their construct declarations
(:data:`linkstack.sdls.header.SECURITY_HEADER`, ``SECURITY_TRAILER``: every length is a
managed parameter of the SA, so the fields after the SPI are variable); the table of the SAs
of ``linkstack run secure`` is read from the shipped SA file; the worked example secures a TM
frame with SA 1 of that file and the public test key, shows it octet by octet, and decodes it
back with :meth:`linkstack.sdls.SdlsEngine.process` (a build fails if the two disagree).
"""

from __future__ import annotations

from importlib import resources

from linkstack.frames import clcw, tm
from linkstack.sdls import FrameAccepted, SdlsEngine, SecurityHeader, load_sa_file, read_sa_file
from linkstack.sdls.header import SECURITY_HEADER, SECURITY_TRAILER
from linkstack.specgen.frames import TM_HEADER, check, fecf_row, octets_row, zone_rows
from linkstack.specgen.render import (
    Example,
    FieldDoc,
    HeaderSpec,
    Page,
    Row,
    Span,
    SpecBuildError,
    fmt_int,
    header_rows,
    md_table,
)

__all__ = ["SDLS_PAGE"]

BOOK = "CCSDS 355.0-B-2 (Space Data Link Security Protocol)"
SECTION_HEADER = "§3.2"

HEADER_SPEC = HeaderSpec(
    key="sdls.security_header",
    title="Security Header",
    struct=SECURITY_HEADER,
    declared_in="linkstack.sdls.header.SECURITY_HEADER",
    note="Right after the frame's headers (the first octet of the data field the frame "
         "would have without SDLS). Only the SPI has a fixed size: the other lengths are "
         "managed parameters of the SA the SPI names, and the receiver knows them from there.",
    variable_text={
        "iv": "Initialization Vector: 0..32 octets (transmitted part)",
        "sequence_number": "Sequence Number (ARSN): 0..20 octets (transmitted part)",
        "pad_length": "Pad Length: 0..2 octets, if the SA has it",
    },
    docs={
        "spi": FieldDoc(
            "Security Parameter Index", "Names the Security Association that secured the "
            "frame: its service, algorithm, key and every length below.", "0..65535; "
            "linkstack: 16 bits on every frame type", "§3.2.2", "SPI"),
        "iv": FieldDoc(
            "Initialization Vector", "The IV of the cipher (AES-GCM: 12 octets, a counter "
            "the sender increments for every frame). Only its low-order "
            "iv_transmitted_length octets travel; the receiver rebuilds the rest from the "
            "last value it accepted.", "iv_length octets per SA (0 without IV)", "§3.2.3",
            "IV"),
        "sequence_number": FieldDoc(
            "Sequence Number", "The Anti-Replay Sequence Number (ARSN), when the SA has one; "
            "low-order arsn_transmitted_length octets.", "arsn_length octets per SA",
            "§3.2.4", "Sequence Number"),
        "pad_length": FieldDoc(
            "Pad Length", "Octets of fill added before encryption (for block ciphers); "
            "the algorithms here are stream modes and MACs, so linkstack sends 0.",
            "0..2 octets per SA (absent with 0)", "§3.2.5", "Pad Length"),
    },
)

TRAILER_SPEC = HeaderSpec(
    key="sdls.security_trailer",
    title="Security Trailer",
    struct=SECURITY_TRAILER,
    declared_in="linkstack.sdls.header.SECURITY_TRAILER",
    note="Right after the data field, before the OCF and the FECF (so neither is covered by "
         "the MAC: the FECF is recomputed over the secured frame, and the CLCW in the OCF is "
         "trusted because the frame carrying it verified).",
    variable_text={"mac": "Message Authentication Code: mac_length octets (0..32)"},
    docs={
        "mac": FieldDoc(
            "Message Authentication Code", "The GCM tag (authenticated encryption, GMAC) or "
            "the AES-CMAC / HMAC-SHA-256 value over the authenticated octets, cut to the SA's "
            "MAC length. Absent for encryption only.", "mac_length octets per SA", "§3.3.2",
            "MAC"),
    },
)


def _sa_table() -> str:
    folder = resources.files("linkstack.sims").joinpath("scenarios", "sdls")
    sas = read_sa_file(str(folder.joinpath("secure-sa.toml")))
    rows = []
    for sa in sas:
        iv = f"{sa.iv_length} ({sa.iv_tx} sent)" if sa.iv_length else "—"
        arsn = f"{sa.arsn_length} ({sa.arsn_tx} sent)" if sa.arsn_length else "—"
        rows.append((str(sa.spi), sa.name or "", sa.frame.value.upper(),
                     ", ".join(map(str, sorted(sa.vcids))),
                     sa.service.value.replace("_", " "), sa.algorithm.value.upper(),
                     str(sa.key_id), iv, arsn, str(sa.mac_length), str(sa.arsn_window),
                     str(sa.overhead)))
    return "\n".join([
        "## The SAs of `linkstack run secure`",
        "",
        "Read from `sims/scenarios/sdls/secure-sa.toml` (one SA per direction of the default "
        "scenario, each with its own key: two AES-GCM senders under one key would reuse IVs). "
        "Lengths in octets; the overhead is what the SA adds to every frame, by which the "
        "frames the layer above builds are shorter.",
        "",
        md_table(("SPI", "Name", "Frames", "VCs", "Service", "Algorithm", "Key ID", "IV",
                  "ARSN", "MAC", "Window", "Overhead"), rows),
        "",
    ])


_CODE = """
from importlib import resources

from linkstack.frames.clcw import Clcw
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.sdls import SdlsEngine, load_sa_file
from linkstack.sims.scenario import private_key_file
from linkstack.spp.packet import SpacePacket, idle_packet

shipped = resources.files("linkstack.sims") / "scenarios" / "sdls"
channel = TmChannelConfig(frame_length=64, has_fecf=True)  # the secured frames
with private_key_file(shipped / "secure-test-keys.toml") as keys:  # PUBLIC test keys
    relay = SdlsEngine(load_sa_file(shipped / "secure-sa.toml", keys, spis=[1]), channel)
clear_config = relay.clear_channel(1)  # 34 octets: 30 fewer, for the header and trailer
packet = SpacePacket(apid=0x101, sequence_count=1, data=b"answer").encode()
zone = packet + idle_packet(clear_config.data_field_capacity(ocf=True) - len(packet))
clear = TmFrame(scid=0x2A, vcid=0, mc_frame_count=3, vc_frame_count=3,
                first_header_pointer=0, data_field=zone,
                ocf=Clcw(vcid=0, report_value=8).encode()).encode(clear_config)
octets = relay.apply(clear)  # ApplySecurity: SPI 1, IV 1, AES-256-GCM
"""
_CHANNEL = tm.TmChannelConfig(frame_length=64, has_fecf=True)
_SPI, _IV, _DATA, _MAC, _OCF, _FECF = 6, 8, 20, 42, 58, 62


def _spans(octets: bytes) -> list[Span]:
    return [Span(0, 6, "TM primary header (clear, authenticated)"),
            Span(6, 8, "Security Header: SPI"),
            Span(8, 20, "Security Header: IV"),
            Span(20, 42, "data field, encrypted (AES-256-GCM)"),
            Span(42, 58, "Security Trailer: MAC (GCM tag)"),
            Span(58, 62, "OCF: CLCW (clear, not authenticated)"),
            Span(62, 64, "FECF (over the secured frame)")]


def _receiver() -> SdlsEngine:
    from linkstack.sims.scenario import private_key_file

    shipped = resources.files("linkstack.sims").joinpath("scenarios", "sdls")
    with private_key_file(str(shipped.joinpath("secure-test-keys.toml"))) as keys:
        db = load_sa_file(str(shipped.joinpath("secure-sa.toml")), keys, spis=[1])
    return SdlsEngine(db, _CHANNEL)


def _decode(octets: bytes) -> list[Row]:
    rows, v = header_rows(TM_HEADER, octets, 0, "primary header")
    check((v["scid"], v["vcid"], v["ocf_flag"]) == (0x2A, 0, 1), "the header of the example")
    rx = _receiver()
    sa = rx.sadb[1]
    parsed = SECURITY_HEADER.parse(octets[_SPI:_DATA], iv_length=sa.iv_tx,
                                   sn_length=sa.arsn_tx,
                                   pad_length_field_length=sa.pad_length_field_length)
    header = SecurityHeader.decode(octets, _SPI, iv_length=sa.iv_tx, sn_length=sa.arsn_tx,
                                   pad_length_field_length=sa.pad_length_field_length)
    check(header.spi == parsed.spi and header.iv == parsed.iv and header.size == _DATA - _SPI,
          "SecurityHeader.decode disagrees with the construct parse")
    rows.append(octets_row("Security Header", HEADER_SPEC.docs["spi"].title, octets, _SPI,
                           _IV, f"{fmt_int(header.spi, 16)}: SA {sa.spi} ({sa.name}), "
                           f"{sa.service.value.replace('_', ' ')}, "
                           f"{sa.algorithm.value.upper()}, key {sa.key_id}"))
    rows.append(octets_row("Security Header", HEADER_SPEC.docs["iv"].title, octets, _IV,
                           _DATA, f"{int.from_bytes(header.iv, 'big')} (all {sa.iv_length} "
                           "octets sent; the sender's first frame under this key)"))
    rows.append(octets_row("data field", "Transfer Frame Data Field (ciphertext)", octets,
                           _DATA, _MAC, f"{_MAC - _DATA} octets, encrypted: the packet "
                           "zone, decoded below"))
    rows.append(octets_row("Security Trailer", TRAILER_SPEC.docs["mac"].title, octets, _MAC,
                           _OCF, f"{sa.mac_length} octets over the AAD (octets 0–"
                           f"{_DATA - 1}) and the ciphertext: verified below"))
    word = clcw.Clcw.decode(octets[_OCF:_FECF])
    rows.append(octets_row("trailer", "Operational Control Field", octets, _OCF, _FECF,
                           f"CLCW: VCID {word.vcid}, report value V(R) = {word.report_value}"))
    rows.append(fecf_row(octets, _FECF))
    result = rx.process(octets)
    if not isinstance(result, FrameAccepted):
        raise SpecBuildError(f"worked example sdls.tm_frame: rejected: {result.detail}")
    check(result.iv == int.from_bytes(header.iv, "big") and rx.sadb[1].iv == result.iv,
          "ProcessSecurity's IV")
    clear = result.frame
    rows.append(("decoded back", "ProcessSecurity", "the whole frame", "—",
                 f"accepted: FECF, SPI {result.spi}, SA operational, key active, MAC "
                 f"verified, IV {result.iv} in the window; the clear frame is "
                 f"{len(clear)} octets"))
    frame = tm.TmFrame.decode(clear, rx.clear_channel(1))
    check(frame.ocf == octets[_OCF:_FECF] and frame.scid == 0x2A, "the clear frame's header")
    rows += zone_rows(clear, tm.PRIMARY_HEADER_SIZE, frame.data_field,
                      frame.first_header_pointer, "clear frame")
    return rows


EXAMPLE = Example(
    key="sdls.tm_frame",
    title="a 64-octet TM frame secured with SA 1 (AES-256-GCM), decoded back",
    intro="The downlink SA of `linkstack run secure` (SPI 1) secures a TM frame of a "
          "64-octet physical channel with the public test key 1. The layer above built a "
          "34-octet clear frame (30 octets shorter: 2 SPI + 12 IV + 16 MAC) holding one "
          "Space Packet and an idle packet, with a CLCW in its OCF; ApplySecurity inserted "
          "the Security Header after the primary header, encrypted the data field with the "
          "AAD = primary header + Security Header, appended the tag as the MAC before the "
          "OCF, and recomputed the FECF.",
    code=_CODE,
    spans=_spans,
    decode=_decode,
    note="Decoded field by field (the TM header from the bits at the offsets its declaration "
         "gives, the Security Header with its construct declaration and "
         "`SecurityHeader.decode`), then verified and decrypted by a fresh receiving engine "
         "loaded from the same SA file (ProcessSecurity); the clear frame's packets are "
         "decoded with the TM decoder. Positions in the \"clear frame\" rows count in the "
         "34-octet clear frame.",
)


SDLS_PAGE = Page(
    filename="sdls.md",
    title="Space Data Link Security (CCSDS 355.0-B-2, 355.1-B-1)",
    summary="authenticated encryption of every frame: Security Header and Trailer, SAs, "
            "keys, anti-replay",
    book=BOOK,
    parts=(
        """
## Purpose and place in the stack

SDLS protects the transfer frames themselves: a frame is secured after the layer above
built it and before the channel coding, and verified after decoding, before FARM-1, the
demultiplexer or selective repeat sees it. Nothing from the link is trusted until
authenticated: a frame that fails a check goes no further (not its packets, not its CLCW,
not its COP-1 control command, not its SR acknowledgement) and is counted by reason.

```text
  Space Packets, COP-1 / selective repeat / multiplexer: clear frames, shorter by the overhead
  SDLS  <-- this page: ApplySecurity on send, ProcessSecurity on receive
  channel coding: CLTU (cltu-bch.md), CADU (tm-coding.md)
```

A **Security Association** (SA), named by the SPI in every frame, holds what both ends
agreed: the service (authenticated encryption, authentication only, encryption only), the
algorithm and key, every field length, the authentication mask and the anti-replay window.
Keys are never in an SA file: the SA names them by Key ID, a separate key file readable only
by its owner holds them. The frame layout is:

```text
  | frame headers | Security Header | data field (encrypted) | Security Trailer | OCF | FECF |
                  |<- SPI, IV, ARSN, Pad Length                 MAC ->|
  authenticated:  |<----------------- the AAD ------------------>|<-- ciphertext -->|
```

Where the Security Header goes: after the TC primary header (and the Segment Header, when
the VC uses one; the Frame Length grows by the overhead), after the TM primary and secondary
headers, after the AOS primary header, FHEC and Insert Zone, after the USLP primary header
and Insert Zone (so the TFDF header is protected). TM and AOS frames keep their fixed
length, so the data field of the clear frame is that much shorter.

**Anti-replay.** The receiver accepts a frame only if its sequence number (the IV of an
AES-GCM SA, else the ARSN; both when there are both) is at most `arsn_window` ahead of the
highest it accepted, or, for a frame reordered on the link, less than `arsn_window` behind it
and not accepted before (a bitmap of the values just behind, in the manner of RFC 6479; at
most 65536). The state only advances once the MAC verified. A replayed frame, one older than
the window, or a jump of more than the window ahead is rejected as `REPLAY`. The sender's
counters are reserved in a state file before use, so that a restart never reuses an IV.
""",
        "## Headers",
        HEADER_SPEC,
        TRAILER_SPEC,
        _sa_table,
        "## Worked example",
        EXAMPLE,
        """
## In the code

- `linkstack.sdls`: `SdlsEngine` (`apply` = ApplySecurity, `process` = ProcessSecurity,
  typed `FrameAccepted` / `SdlsRejected` with a `RejectReason`), `SecurityAssociation`,
  `SaDatabase` (the 355.1-B-1 SA procedures), `ReplayWindow`, `KeyRing` and the key file,
  `load_sa_file`, the counter stores, the Extended Procedures PDUs (`linkstack.sdls.pdu`)
  and their service over the link (`linkstack.sdls.ep`: one PDU per telecommand packet on APID
  0x103, executed by the RF hop's spacecraft end only when its frame was authenticated, never
  on the authenticating SA; replies down on the same APID).
- `linkstack.hops.security`: SDLS on a hop direction (`SdlsLayer`), wired into the RF and ISL
  endpoints; `linkstack run secure` runs the default scenario with it on every hop, the
  `<hop>.sdls` rows of the breakdown giving the time its octets take.
- `linkstack sdls protect|verify` and `linkstack frame decode --sa FILE`: the same from the
  command line; `bench/sdls.py`: throughput against a CRC-only baseline.
""",
    ),
)
