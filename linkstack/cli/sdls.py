"""``linkstack sdls protect|verify``: CCSDS 355.0-B-2 ApplySecurity and ProcessSecurity on frames.

::

    linkstack sdls protect --layer tm --sa sa.toml --spi 1 --counter-file ctr.json \\
        clear.bin > secured.bin
    linkstack sdls verify --layer tm --sa sa.toml --json secured.bin

Frames come as binary from FILE or stdin (``-``), or as hex with ``--hex``; several frames
back to back are taken one after the other (TM and AOS frames, and USLP frames of a
fixed-length channel, are ``--frame-length`` octets each; TC and variable USLP frames say
their length). The managed parameters a frame does not carry are options, as for
``linkstack frame decode`` (FECF, insert zone, FHEC, OCF on AOS, Segment Header on TC);
``--frame-length`` is the length of the *secured* frames of the physical channel (default:
the input for ``verify``, the clear frame plus the SA's overhead for ``protect``).

Keys: ``--key-file``, else the environment variable ``LINKSTACK_SDLS_KEY_FILE``, else the SA
file's own ``key_file``; a key file must be private to its owner (``chmod 600``), except the
public test keys shipped with linkstack (``sims/scenarios/sdls/*-test-keys.toml``), read
through a private copy.

``protect`` writes the secured frames (binary, or hex lines when the input was ``--hex``) to
stdout or ``--out``. The SA's IV (an AES-GCM counter) and ARSN must never repeat under one
key, also from one run to the next: ``--counter-file`` keeps them (created if missing;
:class:`~linkstack.sdls.counters.FileCounterStore`), and ``protect`` refuses an SA with such
a counter without it.

``verify`` starts from the SA file's last accepted IV / ARSN (it keeps no state between runs:
a frame replayed from an earlier run is not detected) and prints one line per frame, or one
JSON object per frame with ``--json``: the Security Header fields, the MAC, ``"verified"``
and, for a rejected frame, ``"reason"`` (a :class:`~linkstack.sdls.RejectReason`) and
``"detail"``. ``--out`` takes the clear frames of the accepted ones.

Exit status: 0 every frame verified (or protected), 1 a frame was rejected, 2 bad input (one
``error:`` line naming the option; never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from linkstack.cli.options import (
    FecfOpt,
    FecfSizeOpt,
    FhecOpt,
    InsertZoneOpt,
    OcfOpt,
    SegmentOpt,
    fail,
    group,
)
from linkstack.errors import ConfigError, DecodeError, LinkstackError

__all__ = ["ChannelOptions", "SecurityOptions", "load_database", "physical_channel",
           "read_frames_input", "register", "split_frames", "verify_report"]

LAYERS = ("tc", "tm", "aos", "uslp")

LayerOpt = Annotated[str, typer.Option("--layer", "-l", help="tc, tm, aos or uslp.",
                                       case_sensitive=False)]
SaOpt = Annotated[Path, typer.Option("--sa", help="The SA file (TOML, "
                                     "linkstack.sdls.config).")]
KeyFileOpt = Annotated[Path | None, typer.Option(
    "--key-file", help="The key file (TOML, chmod 600). Default: $LINKSTACK_SDLS_KEY_FILE, "
    "else the SA file's key_file.")]
HexOpt = Annotated[str | None, typer.Option("--hex", help="The frame(s) as hex text.")]
FileArg = Annotated[Path | None, typer.Argument(
    help="Binary file holding the frame(s) ('-' or nothing: stdin).", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Write the resulting frames (binary) here ('-': stdout).")]
FrameLengthOpt = Annotated[int | None, typer.Option(
    "--frame-length", "-n", min=1, help="Length of the secured frames (TM, AOS, fixed USLP).")]


@dataclass(frozen=True)
class ChannelOptions:
    """The managed parameters of the physical channel that the frames do not carry."""

    layer: str
    fecf: bool = True
    fecf_size: int = 2
    frame_length: int | None = None
    ocf: bool = False
    insert_zone: int = 0
    fhec: bool = False
    segment_header: bool = False


@dataclass(frozen=True)
class SecurityOptions:
    """Where the SAs and keys are (``--sa``, ``--spi``, ``--key-file``)."""

    sa_file: Path
    spi: int | None = None
    key_file: Path | None = None


def _layer(text: str) -> str:
    layer = text.lower()
    if layer not in LAYERS:
        raise ConfigError(f"{text!r} is not one of {', '.join(LAYERS)}", key="--layer")
    return layer


def physical_channel(opts: ChannelOptions, frame_length: int | None) -> Any:
    """The channel configuration of the *secured* frames (``frame_length`` for TM/AOS and
    fixed USLP, None for variable USLP; TC frames say their own length)."""
    from linkstack.frames.aos import AosChannelConfig
    from linkstack.frames.tc import TcChannelConfig
    from linkstack.frames.tm import TmChannelConfig
    from linkstack.frames.uslp import UslpChannelConfig

    layer = _layer(opts.layer)
    try:
        if layer == "tc":
            return TcChannelConfig(has_fecf=opts.fecf, segmented_vcids=frozenset(
                range(64) if opts.segment_header else ()))
        if frame_length is None and layer in ("tm", "aos"):
            raise ConfigError("needed: the frames' length", key="--frame-length")
        if layer == "tm":
            assert frame_length is not None
            return TmChannelConfig(frame_length=frame_length, has_fecf=opts.fecf)
        if layer == "aos":
            assert frame_length is not None
            return AosChannelConfig(frame_length=frame_length, has_fecf=opts.fecf,
                                    has_fhec=opts.fhec, insert_zone_length=opts.insert_zone,
                                    ocf_vcids=frozenset(range(63) if opts.ocf else ()))
        return UslpChannelConfig(frame_length=frame_length,
                                 fecf_size=opts.fecf_size if opts.fecf else 0,
                                 insert_zone_length=opts.insert_zone)
    except ConfigError as exc:
        if exc.key.startswith("--"):
            raise
        option = {"frame_length": "--frame-length", "insert_zone_length": "--insert-zone",
                  "fecf_size": "--fecf-size"}.get(exc.key, "--layer")
        raise ConfigError(exc.reason, key=option) from None


def _key_path(sec: SecurityOptions) -> Path | None:
    from linkstack.sdls.config import key_file_setting
    from linkstack.sims.scenario import KEY_FILE_ENV

    if sec.key_file is not None:
        return sec.key_file
    env = os.environ.get(KEY_FILE_ENV)
    if env:
        return Path(env)
    try:
        return key_file_setting(sec.sa_file)
    except ConfigError as exc:
        raise ConfigError(f"{exc.key}: {exc.reason}", key="--sa") from None


def load_database(sec: SecurityOptions, *, layer: str | None = None,
                  counter_file: Path | None = None) -> Any:
    """The SA database of the SA file with its keys: SA ``spi`` if given, else the SAs of
    frame type ``layer`` (else all).

    Errors name the option: ``--sa`` (the SA file), ``--spi``, ``--key-file`` (the key file,
    also when it came from the environment or the SA file), ``--counter-file``.
    """
    from linkstack.sdls.config import load_sa_file, read_sa_file
    from linkstack.sdls.counters import FileCounterStore
    from linkstack.sdls.errors import KeyFileError
    from linkstack.sims.scenario import private_key_file

    try:
        sas = read_sa_file(sec.sa_file)
    except ConfigError as exc:
        raise ConfigError(f"{exc.key}: {exc.reason}", key="--sa") from None
    if sec.spi is not None:
        chosen = next((sa for sa in sas if sa.spi == sec.spi), None)
        if chosen is None:
            known = ", ".join(str(sa.spi) for sa in sas) or "none"
            raise ConfigError(f"no SA {sec.spi} in {sec.sa_file} (SPIs: {known})",
                              key="--spi")
        if layer is not None and chosen.frame.value != layer:
            raise ConfigError(f"SA {chosen.spi} protects {chosen.frame.value.upper()} frames, "
                              f"not {layer.upper()}", key="--layer")
    key_path = _key_path(sec)
    if key_path is None:
        raise ConfigError("no key file: give --key-file FILE, set the environment variable "
                          "LINKSTACK_SDLS_KEY_FILE, or key_file in the SA file", key="--key-file")
    counters = None
    if counter_file is not None:
        try:
            counters = FileCounterStore(counter_file)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key="--counter-file") from None
    if sec.spi is not None:
        spis: list[int] | None = [sec.spi]
    elif layer is not None:
        spis = [sa.spi for sa in sas if sa.frame.value == layer]
        if not spis:
            raise ConfigError(f"no {layer.upper()} SA in {sec.sa_file}", key="--layer")
    else:
        spis = None
    try:
        with private_key_file(key_path) as usable:
            return load_sa_file(sec.sa_file, usable, counters=counters, spis=spis)
    except KeyFileError as exc:
        raise ConfigError(f"{key_path}: {exc.reason}", key="--key-file") from None
    except ConfigError as exc:
        if sec.spi is None and "both operational" in exc.reason:
            # one SA per direction: each end of a link loads its own (--spi)
            raise ConfigError(f"{exc.reason.split(' (')[0]}: say which with --spi",
                              key="--spi") from None
        option = "--key-file" if exc.key.startswith("key") else "--sa"
        raise ConfigError(f"{exc.key}: {exc.reason}", key=option) from None


def read_frames_input(hex_text: str | None, path: Path | None) -> tuple[bytes, bool]:
    """The input octets and whether they came as hex."""
    if hex_text is not None and path is not None:
        raise ConfigError("give FILE or --hex, not both", key="--hex")
    if hex_text is not None:
        cleaned = "".join(hex_text.split()).removeprefix("0x")
        try:
            data = bytes.fromhex(cleaned)
        except ValueError as exc:
            raise ConfigError(f"not hex: {exc}", key="--hex") from None
        if not data:
            raise ConfigError("no octets", key="--hex")
        return data, True
    if path is None or str(path) == "-":
        if path is None and sys.stdin.isatty():
            raise ConfigError("no frames: give FILE, '-' for stdin, or --hex HEX", key="FILE")
        data = sys.stdin.buffer.read()
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}", key="FILE") from None
    if not data:
        raise ConfigError("no octets", key="FILE")
    return data, False


def split_frames(data: bytes, channel: Any) -> list[bytes]:
    """Cut ``data`` into frames of ``channel`` (fixed length, or each frame's Frame Length)."""
    from linkstack.frames.tc import TcChannelConfig, tc_frame_length
    from linkstack.frames.uslp import uslp_frame_length

    fixed = getattr(channel, "frame_length", None)
    if fixed is not None:
        if len(data) % fixed:
            raise ConfigError(f"{len(data)} octets are not a whole number of {fixed}-octet "
                              "frames", key="--frame-length")
        return [data[i:i + fixed] for i in range(0, len(data), fixed)]
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        rest = data[pos:]
        try:
            if isinstance(channel, TcChannelConfig):
                length = tc_frame_length(rest)
            else:
                length = uslp_frame_length(rest, channel)
        except DecodeError as exc:
            raise DecodeError(f"frame {len(frames)}: {exc.reason}", layer=exc.layer,
                              field=exc.field, offset=pos + exc.offset) from None
        if length > len(rest):
            layer = "tc" if isinstance(channel, TcChannelConfig) else "uslp"
            raise DecodeError(f"frame {len(frames)}: Frame Length says {length} octets, "
                              f"{len(rest)} left", layer=layer, field="frame_length",
                              offset=pos)
        frames.append(rest[:length])
        pos += length
    return frames


def _hex_or_none(value: int | None, octets: int) -> str | None:
    return None if value is None else value.to_bytes(max(octets, 1), "big").hex()


def verify_report(engine: Any, frame: bytes, index: int = 0) -> tuple[dict[str, Any], Any]:
    """ProcessSecurity of one frame: the JSON report and the engine's result.

    The report has the Security Header fields as found in the frame (when its SPI names a
    known SA), the MAC, ``verified`` and, if rejected, ``reason`` and ``detail``.
    """
    from linkstack.sdls import FrameAccepted, SecurityHeader
    from linkstack.sdls.layout import locate

    report: dict[str, Any] = {"frame": index, "layer": engine.frame_type.value,
                              "length": len(frame)}
    sa = None
    try:
        geo = locate(frame, engine.channel)
        report.update(scid=geo.scid, vcid=geo.vcid)
        spi = (frame[geo.data_start] << 8) | frame[geo.data_start + 1]
        sa = engine.sadb.get(spi)
        if sa is None:
            report["security_header"] = {"spi": spi}
        else:
            header = SecurityHeader.decode(frame, geo.data_start, iv_length=sa.iv_tx,
                                           sn_length=sa.arsn_tx,
                                           pad_length_field_length=sa.pad_length_field_length)
            report["security_header"] = {
                "spi": header.spi, "iv": header.iv.hex(),
                "sequence_number": header.sequence_number.hex(),
                "pad_length": header.pad_length}
            report["mac"] = frame[geo.data_end - sa.mac_length:geo.data_end].hex()
    except (LinkstackError, IndexError):
        report["security_header"] = None
    result = engine.process(frame)
    if isinstance(result, FrameAccepted):
        assert sa is not None
        report.update(verified=True, reason=None, detail=None, spi=result.spi,
                      iv=_hex_or_none(result.iv, sa.iv_length),
                      arsn=_hex_or_none(result.arsn, sa.arsn_length),
                      clear_length=len(result.frame))
    else:
        report.update(verified=False, reason=result.reason.value, detail=result.detail,
                      spi=result.spi)
    return report, result


def _write(out: Path | None, frames: list[bytes], as_hex: bool) -> None:
    if out is not None and str(out) != "-":
        try:
            out.write_bytes(b"".join(frames))
        except OSError as exc:
            raise ConfigError(f"{out}: {exc.strerror}", key="--out") from None
        return
    if as_hex and out is None:
        for f in frames:
            typer.echo(f.hex())
        return
    sys.stdout.buffer.write(b"".join(frames))
    sys.stdout.buffer.flush()


def _protect(layer: str, sec: SecurityOptions, counter_file: Path | None, data: bytes,
             channel_opts: ChannelOptions) -> list[bytes]:
    from linkstack.sdls import SdlsEngine
    from linkstack.sdls.errors import SaStateError, SequenceExhaustedError

    db = load_database(sec, layer=layer, counter_file=counter_file)
    assert sec.spi is not None
    sa = db[sec.spi]
    if counter_file is None and (sa.iv_length or sa.arsn_length):
        raise ConfigError(
            f"needed: SA {sa.spi} counts its {'IV' if sa.iv_length else 'ARSN'} from the SA "
            "file's value at every run, so two runs would reuse one (an IV reused under an "
            "AES-GCM key breaks it); give a state file (created if missing)",
            key="--counter-file")
    fixed = channel_opts.frame_length
    if layer in ("tm", "aos") and fixed is None:
        fixed = len(data) + sa.overhead  # one clear frame
    if layer == "uslp" and fixed is not None and fixed <= sa.overhead:
        raise ConfigError(f"{fixed} octets leave nothing once SDLS adds {sa.overhead}",
                          key="--frame-length")
    channel = physical_channel(channel_opts, fixed)
    engine: Any = SdlsEngine(db, channel)
    try:
        clear_channel = engine.clear_channel(sa.spi)
    except ConfigError as exc:
        raise ConfigError(exc.reason, key="--frame-length") from None
    out = []
    for frame in split_frames(data, clear_channel):
        try:
            out.append(engine.apply(frame, spi=sa.spi))
        except (SaStateError, SequenceExhaustedError) as exc:
            raise ConfigError(str(exc), key="--spi") from None
    return out


def register(app: typer.Typer) -> None:
    """Add the ``sdls`` command group to ``app``."""
    sdls_app = group("Secure (protect) or verify transfer frames with CCSDS 355.0-B-2 SDLS.")

    @sdls_app.command("protect")
    def protect(
        layer: LayerOpt,
        sa: SaOpt,
        spi: Annotated[int, typer.Option("--spi", help="The SA to apply.")],
        file: FileArg = None,
        hex_text: HexOpt = None,
        key_file: KeyFileOpt = None,
        counter_file: Annotated[Path | None, typer.Option(
            "--counter-file", help="State file of the SA's IV/ARSN counter, so that no run "
            "reuses one (created if missing).")] = None,
        out: OutOpt = None,
        fecf: FecfOpt = True,
        fecf_size: FecfSizeOpt = 2,
        frame_length: FrameLengthOpt = None,
        ocf: OcfOpt = False,
        insert_zone: InsertZoneOpt = 0,
        fhec: FhecOpt = False,
        segment_header: SegmentOpt = False,
    ) -> None:
        """ApplySecurity: secure clear frames (built for the SA's shorter clear frames) and
        write the secured frames."""
        opts = ChannelOptions(layer, fecf, fecf_size, frame_length, ocf, insert_zone, fhec,
                              segment_header)
        try:
            name = _layer(layer)
            data, as_hex = read_frames_input(hex_text, file)
            frames = _protect(name, SecurityOptions(sa, spi, key_file), counter_file, data,
                              opts)
            _write(out, frames, as_hex)
        except LinkstackError as exc:
            raise fail(exc) from None

    @sdls_app.command("verify")
    def verify(
        layer: LayerOpt,
        sa: SaOpt,
        spi: Annotated[int | None, typer.Option(
            "--spi", help="Verify with this SA only (default: the SA the frame's SPI "
            "names).")] = None,
        file: FileArg = None,
        hex_text: HexOpt = None,
        key_file: KeyFileOpt = None,
        as_json: Annotated[bool, typer.Option(
            "--json", help="One JSON object per frame.")] = False,
        out: OutOpt = None,
        fecf: FecfOpt = True,
        fecf_size: FecfSizeOpt = 2,
        frame_length: FrameLengthOpt = None,
        ocf: OcfOpt = False,
        insert_zone: InsertZoneOpt = 0,
        fhec: FhecOpt = False,
        segment_header: SegmentOpt = False,
    ) -> None:
        """ProcessSecurity: verify (and decrypt) secured frames; exit status 1 if any is
        rejected."""
        from linkstack.sdls import FrameAccepted, SdlsEngine

        opts = ChannelOptions(layer, fecf, fecf_size, frame_length, ocf, insert_zone, fhec,
                              segment_header)
        try:
            name = _layer(layer)
            data, _ = read_frames_input(hex_text, file)
            db = load_database(SecurityOptions(sa, spi, key_file), layer=name)
            fixed = frame_length if frame_length is not None or name not in ("tm", "aos") \
                else len(data)
            engine: Any = SdlsEngine(db, physical_channel(opts, fixed))
            frames = split_frames(data, engine.channel)
        except LinkstackError as exc:
            raise fail(exc) from None
        clear: list[bytes] = []
        rejected = 0
        to_stdout = out is not None and str(out) == "-"
        for i, frame in enumerate(frames):
            report, result = verify_report(engine, frame, i)
            if isinstance(result, FrameAccepted):
                clear.append(result.frame)
            else:
                rejected += 1
            if as_json:
                typer.echo(json.dumps(report), err=to_stdout)
            elif report["verified"]:
                typer.echo(f"frame {i}: verified, SPI {report['spi']}"
                           + (f", IV {report['iv']}" if report.get("iv") else "")
                           + (f", ARSN {report['arsn']}" if report.get("arsn") else "")
                           + f", MAC {report.get('mac', '')}"
                           + f"; clear frame {report['clear_length']} octets", err=to_stdout)
            else:
                typer.echo(f"frame {i}: rejected ({report['reason']}): {report['detail']}",
                           err=to_stdout)
        if out is not None:
            try:
                _write(out, clear, False)
            except LinkstackError as exc:
                raise fail(exc) from None
        raise typer.Exit(1 if rejected else 0)

    app.add_typer(sdls_app, name="sdls")
