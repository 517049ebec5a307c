"""Fast construction of frozen, slotted dataclasses (the frames, packets and messages).

Every frame, packet and message a simulated hop carries is a frozen dataclass made several
times on its way; the generated ``__init__`` of a frozen dataclass stores each field with
``object.__setattr__``, which showed as a visible share of a constellation run.
:func:`fast_init` gives such a class an equivalent, faster ``__init__``; :func:`fast_new` is a
constructor for values already checked. Both are refused at import for any other class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


class _Factory:
    """Default of a ``default_factory`` field in a generated ``__init__`` (shown as
    ``<factory>``, as the dataclass's own)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: type[_T]) -> type[_T]:
    """Replace the ``__init__`` of a frozen, slotted dataclass with an equivalent faster one.

    A frozen dataclass's generated ``__init__`` assigns each field with
    ``object.__setattr__(self, "name", value)`` (a global look-up, a bound-method call and a
    name look-up per field), which made these constructors a visible share of the per-frame
    and per-message time. The replacement assigns each field through its slot's member
    descriptor (``Cls.name.__set__``), kept in the closure, which stores the value in the
    same slot, about twice as fast. Everything else is unchanged: the same parameters in the
    same order with the same defaults (``default_factory`` fields are called when omitted,
    ``__post_init__`` runs last), the same annotations, and the class stays frozen, slotted,
    comparable and hashable. Apply it above ``@dataclass(frozen=True, slots=True)``; a class
    that is not one, or that has ``InitVar``, ``init=False`` or keyword-only fields, is
    refused when the module loads.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init needs @dataclass(frozen=True, slots=True)")
    flds = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(flds) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: fast_init does not support InitVar or ClassVar")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    args: list[str] = []
    body: list[str] = []
    for i, f in enumerate(flds):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init needs plain init fields")
        namespace[f"_set{i}"] = getattr(cls, f.name).__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_dflt{i}"] = f.default
            args.append(f"{f.name}=_dflt{i}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_fact{i}"] = f.default_factory
            args.append(f"{f.name}=_FACTORY")
            body.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _fact{i}()")
        else:
            args.append(f.name)
        body.append(f"    _set{i}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    src = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"])
    exec(compile(src, f"<fast_init of {cls.__qualname__}>", "exec"), namespace)
    init = namespace["__init__"]
    old = cls.__dict__["__init__"]
    init.__qualname__ = old.__qualname__
    init.__module__ = old.__module__
    init.__annotations__ = dict(old.__annotations__)
    init.__doc__ = old.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def fast_new(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of a frozen, slotted dataclass taking every field positionally, in
    declaration order, that runs no ``__post_init__``.

    For internal paths whose values are already known valid (e.g. decoded and checked
    against the same limits the ``__post_init__`` enforces): it allocates the instance with
    ``object.__new__`` and stores each field through its slot's member descriptor, exactly
    what the dataclass's ``__init__`` stores, without the call through ``type.__call__``.
    The instance is indistinguishable from one made by the class (same fields, equality and
    hash). Refused when the module loads for anything but a frozen, slotted dataclass.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_new needs @dataclass(frozen=True, slots=True)")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
    lines = [f"def new({', '.join(names)}):", "    self = _new(_cls)"]
    for i, name in enumerate(names):
        namespace[f"_set{i}"] = getattr(cls, name).__set__
        lines.append(f"    _set{i}(self, {name})")
    lines.append("    return self")
    exec(compile("\n".join(lines), f"<fast_new of {cls.__qualname__}>", "exec"), namespace)
    fn: Callable[..., _T] = namespace["new"]
    fn.__doc__ = f"Make a {cls.__qualname__} from all its fields, skipping __init__."
    return fn
