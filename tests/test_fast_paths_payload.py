"""The per-message fast paths agree exactly with their references.

- :func:`linkstack.fast_dataclass.fast_init` (the faster ``__init__`` of the frozen dataclasses made
  on every frame and message) against the dataclass's own ``__init__``;
- :func:`linkstack.fast_dataclass.fast_new` and the decoded GenerationParams that skip
  ``__post_init__`` against the validating constructor;
- the generated parse and build of the payload messages (``_Layout``) against the
  ``construct`` declarations, for bad values too;
- the decoders that now read single bits with ``== 1`` and Sequence Flags from a table
  against ``bool()`` / the enum constructor and the construct declarations;
- :meth:`Reassembler.is_open` against :meth:`Reassembler.open_apids`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkstack.errors import EncodeError
from linkstack.fast_dataclass import fast_init, fast_new
from linkstack.frames import clcw as clcw_mod
from linkstack.frames import tc as tc_mod
from linkstack.frames import tm as tm_mod
from linkstack.frames.clcw import Clcw
from linkstack.frames.tc import TcChannelConfig, TcFrame
from linkstack.frames.tm import TmChannelConfig, TmFrame
from linkstack.payload import messages as m
from linkstack.payload.messages import GenerationParams, Prompt
from linkstack.spp.packet import SequenceFlags, SpacePacket
from linkstack.spp.segmentation import Reassembler

_MODULES = (
    "linkstack.payload.client", "linkstack.payload.endpoint", "linkstack.payload.messages",
    "linkstack.payload.transport", "linkstack.frames.aos", "linkstack.frames.clcw",
    "linkstack.frames.tc", "linkstack.frames.tm", "linkstack.frames.uslp",
    "linkstack.spp.packet", "linkstack.spp.segmentation", "linkstack.spp.stream",
    "linkstack.mux.channel", "linkstack.mux.packet_zone", "linkstack.mux.tc",
    "linkstack.mux.tm", "linkstack.hops.base",
)


def _fast_classes() -> list[type]:
    out = []
    for name in _MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if (isinstance(obj, type) and obj.__module__ == name
                    and getattr(getattr(obj.__init__, "__code__", None), "co_filename",
                                "").startswith("<fast_init")):
                out.append(obj)
    return out


FAST_CLASSES = _fast_classes()


def test_the_hot_classes_have_the_fast_init() -> None:
    names = {c.__name__ for c in FAST_CLASSES}
    assert {"TmFrame", "TcFrame", "Clcw", "SpacePacket", "Prompt", "Result", "PartialResult",
            "GenerationParams", "OutgoingFrame", "Zone", "PayloadComplete",
            "MessageReceived", "ResultReceived", "PromptQueued", "Unit"} <= names


@pytest.mark.parametrize("cls", FAST_CLASSES, ids=lambda c: c.__name__)
def test_fast_init_keeps_the_dataclass_contract(cls: type) -> None:
    """Same parameters, defaults and annotations as the fields; still frozen, slotted."""
    assert dataclasses.is_dataclass(cls)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen and "__slots__" in cls.__dict__
    sig = inspect.signature(cls)
    fields = dataclasses.fields(cls)
    assert [p.name for p in sig.parameters.values()] == [f.name for f in fields]
    for p, f in zip(sig.parameters.values(), fields, strict=True):
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if f.default is not dataclasses.MISSING:
            assert p.default is f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert repr(p.default) == "<factory>"
        else:
            assert p.default is inspect.Parameter.empty
    assert cls.__init__.__annotations__ == {**{f.name: f.type for f in fields},
                                            "return": None}


# A reference pair: the same declaration with the dataclass's own __init__ and with fast_init.

class _Checked(Exception):
    pass


def _post_init(self: Any) -> None:
    if self.a < 0:
        raise _Checked("a < 0")
    object.__setattr__(self, "e", tuple(self.e))


def _declare() -> type:
    ns: dict[str, Any] = {
        "__annotations__": {"a": "int", "b": "bytes", "c": "int", "d": "bool", "e": "tuple",
                            "f": "int | None"},
        "c": 0, "d": False, "e": dataclasses.field(default_factory=tuple), "f": None,
        "__post_init__": _post_init,
    }
    return dataclasses.dataclass(frozen=True, slots=True)(type("Pair", (), ns))


_Ref = _declare()
_Fast = fast_init(_declare())
values = st.one_of(st.integers(-3, 3), st.binary(max_size=3), st.none(), st.booleans(),
                   st.lists(st.integers(0, 3), max_size=2))


@given(st.lists(values, min_size=2, max_size=6), st.data())
def test_fast_init_agrees_with_the_dataclass_init(args: list[Any], data: st.DataObject) -> None:
    """Positional and keyword calls, omitted defaults and factories, ``__post_init__`` (its
    normalisation and its error), equality, hash and frozenness."""
    names = ["a", "b", "c", "d", "e", "f"]
    n_pos = data.draw(st.integers(0, len(args)))
    kwargs = dict(zip(names[n_pos:len(args)], args[n_pos:], strict=True))

    def make(cls: type) -> Any:
        try:
            return cls(*args[:n_pos], **kwargs)
        except Exception as exc:  # the same exception, or an object
            return type(exc), str(exc).replace(cls.__qualname__, "Pair")

    ref, fast = make(_Ref), make(_Fast)
    if isinstance(ref, tuple):
        assert fast == ref
        return
    assert [getattr(fast, n) for n in names] == [getattr(ref, n) for n in names]
    assert repr(fast) == repr(ref)
    assert fast == _Fast(*[getattr(ref, n) for n in names])
    try:
        h: Any = hash(ref)
    except TypeError as exc:
        h = str(exc)
    try:
        assert hash(fast) == h
    except TypeError as exc:
        assert str(exc) == h
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 1


def test_fast_init_and_fast_new_refuse_what_they_do_not_support() -> None:
    @dataclasses.dataclass
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KwOnly:
        a: int

    for cls in (Mutable, NoSlots):
        with pytest.raises(TypeError):
            fast_init(cls)
        with pytest.raises(TypeError):
            fast_new(cls)
    with pytest.raises(TypeError):
        fast_init(KwOnly)


def test_the_decoded_temperature_is_what_the_constructor_makes() -> None:
    """``fast_new`` skips GenerationParams.__post_init__ on decode: its normalisation
    ``round(t * 1000) / 1000`` maps every wire value ``milli / 1000`` to itself."""
    for milli in range(m.MAX_TEMPERATURE_MILLI + 1):
        t = milli / 1000
        assert round(float(t) * 1000) / 1000 == t
        assert GenerationParams(1, t).temperature == t


u32 = st.integers(0, 2**32 - 1)


@given(st.integers(1, 0xFFFF), st.integers(0, 0xFFFF), u32,
       st.lists(st.text(min_size=1, max_size=8).filter(
           lambda s: len(s.encode("utf-8")) <= m.MAX_STOP_OCTETS), max_size=4))
def test_decoded_params_equal_the_validating_constructor(max_tokens: int, milli: int, seed: int,
                                                         stop: list[str]) -> None:
    params = GenerationParams(max_tokens, milli / 1000, seed, tuple(stop))
    wire = Prompt(7, "text", "", params).encode()
    decoded = Prompt.decode(wire).params
    assert type(decoded) is GenerationParams
    made = GenerationParams(decoded.max_tokens, decoded.temperature, decoded.seed, decoded.stop)
    assert decoded == made == params
    assert hash(decoded) == hash(made)
    assert [type(getattr(decoded, f.name)) for f in dataclasses.fields(GenerationParams)] == \
        [type(getattr(made, f.name)) for f in dataclasses.fields(GenerationParams)]


# -- the generated message layouts ----------------------------------------------------------

_LAYOUTS = ((m.PROMPT_STRUCT, m._PROMPT_FAST), (m.RESULT_STRUCT, m._RESULT_FAST),
            (m.PARTIAL_STRUCT, m._PARTIAL_FAST))
_WIRES = st.one_of(
    st.builds(lambda rid, text, mid, prio: Prompt(rid, text, mid, priority=prio).encode(),
              u32, st.text(max_size=40), st.text(max_size=8), st.integers(0, 3)),
    st.builds(lambda rid, text: m.Result(rid, m.Status.OK, text).encode(), u32,
              st.text(max_size=40)),
    st.builds(lambda rid, text: m.PartialResult(rid, 1, 0, text).encode(), u32,
              st.text(max_size=40)),
)
_BAD_INT = st.one_of(st.integers(-2, 2), st.integers(2**8 - 1, 2**8 + 1),
                     st.integers(2**16 - 1, 2**16 + 1), st.integers(2**32 - 1, 2**32 + 1),
                     st.integers(2**64 - 1, 2**64 + 1), st.booleans())
_BAD_STR = st.one_of(st.text(max_size=3), st.text(min_size=250, max_size=300),
                     st.just("\ud800"))


def _bad_value(name: str) -> st.SearchStrategy[Any]:
    """Values of the field's type (what the encoders pass), in range or not: ints at and
    beyond every width, strings too long for their length octet or not encodable."""
    if name == "model_id":
        return _BAD_STR
    if name == "stop_sequences":
        return st.lists(_BAD_STR, max_size=6)
    if name == "text":
        return st.binary(max_size=3)
    return _BAD_INT


def _outcome(build: Any, values: dict[str, Any]) -> Any:
    try:
        return build(values)
    except Exception as exc:
        return type(exc), str(exc), getattr(exc, "field", None)


@given(_WIRES, st.data())
@settings(max_examples=300)
def test_fast_build_agrees_with_the_declaration_for_any_values(wire: bytes,
                                                               data: st.DataObject) -> None:
    """From a message's values with one of them (or one flag) replaced by anything, the
    generated build and the declaration's build give the same octets or the same error."""
    decl, fast = _LAYOUTS[wire[0] - 1]
    values, _ = m._walk(decl, wire)
    values = {k: v for k, v in values.items() if not k.startswith("_")}
    values["flags"] = {k: v for k, v in values["flags"].items() if not k.startswith("_")}
    names = [k for k in values if k not in ("message_type", "end", "flags")]
    target = data.draw(st.sampled_from([*names, "flags.bit", "flags.missing"]))
    if target == "flags.bit":
        bit = data.draw(st.sampled_from(sorted(k for k in values["flags"] if k != "spare")))
        values["flags"][bit] = data.draw(st.integers(-1, 5))
    elif target == "flags.missing":
        del values["flags"][data.draw(st.sampled_from(sorted(values["flags"])))]
    else:
        values[target] = data.draw(_bad_value(target))
    assert _outcome(fast.build, values) == _outcome(lambda v: m._build(decl, v), values)


@given(_WIRES)
def test_fast_parse_reads_what_the_declaration_reads(wire: bytes) -> None:
    decl, fast = _LAYOUTS[wire[0] - 1]
    parsed = fast.parse(wire)
    assert parsed is not None
    ref = decl.parse(wire)
    flags = parsed["flags"]
    assert {k: int(getattr(flags, k)) for k in flags._fields} == {
        k: int(v) for k, v in ref.flags.items() if k in flags._fields}
    for name, value in parsed.items():
        if name != "flags":
            assert value == ref[name]
            if name not in ("end", "stop_sequences"):  # (construct: a ListContainer)
                assert type(value) is type(ref[name])
    assert fast.build(parsed | {"flags": flags._asdict()}) == wire


def test_the_generated_source_is_readable() -> None:
    for _, fast in _LAYOUTS:
        assert fast.source("parse").startswith("def parse(buf):")
        assert fast.source("build").startswith("def build(values):")


# -- the frame and packet decoders -----------------------------------------------------------

@given(st.binary(min_size=4, max_size=4).map(lambda b: bytes([b[0] & 0x1F]) + b[1:]))
def test_clcw_decode_agrees_with_the_declaration(raw: bytes) -> None:
    got = Clcw.decode(raw)
    ref = clcw_mod.CLCW_STRUCT.parse(raw)
    for f in dataclasses.fields(Clcw):
        value = getattr(got, f.name)
        assert value == ref[f.name]
        assert type(value) is (bool if isinstance(ref[f.name], bool) else int)
    assert got == Clcw(**{f.name: ref[f.name] for f in dataclasses.fields(Clcw)})


@given(st.integers(0, 1023), st.integers(0, 63), st.integers(0, 255), st.booleans(),
       st.integers(0, 3), st.integers(0, 63), st.binary(min_size=1, max_size=30))
def test_tc_decode_flags_and_sequence_flags(scid: int, vcid: int, ns: int, ctrl: bool,
                                            seq: int, map_id: int, data: bytes) -> None:
    config = TcChannelConfig(segmented_vcids=frozenset({vcid}))
    bypass = True if ctrl else bool(ns & 1)
    frame = TcFrame(scid, vcid, ns, data, bypass, ctrl, None if ctrl else map_id,
                    SequenceFlags(seq) if not ctrl else SequenceFlags.UNSEGMENTED)
    got = TcFrame.decode(frame.encode(config), config)
    assert got == frame
    assert type(got.bypass_flag) is bool and type(got.control_command_flag) is bool
    assert got.sequence_flags is SequenceFlags(got.sequence_flags)
    assert tc_mod.HEADER.unpack(frame.encode(config))[:2] == (int(bypass), int(ctrl))


@given(st.integers(0, 1023), st.integers(0, 7), st.booleans(), st.booleans(),
       st.integers(0, 255), st.integers(0, 255))
def test_tm_decode_flags_are_bools(scid: int, vcid: int, sync: bool, pof: bool, mc: int,
                                   vc: int) -> None:
    config = TmChannelConfig(64, True, False)
    cap = config.data_field_capacity()
    frame = TmFrame(scid, vcid, mc, vc, 0 if not sync else 5, bytes(range(cap)), None, None,
                    sync, pof, 3 if not sync else 1)
    wire = frame.encode(config)
    got = TmFrame.decode(wire, config)
    assert got == frame
    assert type(got.synchronization_flag) is bool and type(got.packet_order_flag) is bool
    ref = tm_mod.PRIMARY_HEADER.parse(wire)
    assert (got.synchronization_flag, got.packet_order_flag) == (
        ref.synchronization_flag, ref.packet_order_flag)


@given(st.lists(st.tuples(st.sampled_from([5, 6, 7]), st.integers(0, 40),
                          st.sampled_from(list(SequenceFlags))), max_size=30))
def test_reassembler_is_open_agrees_with_open_apids(feeds: list[tuple[int, int, Any]]) -> None:
    r = Reassembler()
    for apid, count, flags in feeds:
        r.feed(SpacePacket(apid, count, b"x", sequence_flags=flags))
        for a in (5, 6, 7, 8):
            assert r.is_open(a) == (a in r.open_apids())


def test_encode_errors_unchanged_by_the_inline_checks() -> None:
    """The inline range checks of Prompt/Result.encode raise what _range raises."""
    cases: list[tuple[Any, str]] = [
        (Prompt(-1, "x"), "request_id"), (Prompt(True, "x", priority=4), "priority"),
        (Prompt(1, "x", "m" * 65), "model_id"), (Prompt(1, "x", "\ud800"), "model_id"),
        (m.Result(2**32, m.Status.OK), "request_id"),
        (m.Result(1, m.Status.OK, completion_tokens=-1), "completion_tokens"),
        (m.Result(1, m.Status.OK, inference_time_us=2**64), "inference_time_us"),
        (m.Result(1, m.Status.OK, prompt_tokens=1.0), "prompt_tokens"),  # type: ignore[arg-type]
        (m.Result(1, 300), "status"),  # type: ignore[arg-type]
        (m.Result(1, 9), "status"),  # type: ignore[arg-type]
    ]
    for message, field in cases:
        with pytest.raises(EncodeError) as info:
            message.encode()
        assert info.value.field == field
    with pytest.raises(EncodeError, match=r"1\.0 is outside 0\.\.4294967295"):
        m.Result(1, m.Status.OK, prompt_tokens=1.0).encode()  # type: ignore[arg-type]
