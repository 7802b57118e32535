"""Checking plain values (from YAML or the command line) against type annotations.

One checker for run configs (:mod:`mgcli.train.config`) and model options
(:func:`mgcli.models.build_model`): lists are accepted for tuples (YAML has no tuples) and ints for
floats; bools are not ints; a ``Literal`` takes one of its values (the one place string choices
are checked). A value that does not fit raises :class:`Mismatch`, which names the
innermost element that failed (``[1]`` in ``[0.3, "x"]``), its annotation and its value; each
caller words the error for its users.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any


class Mismatch(Exception):
    """``value`` (at ``suffix`` inside the checked value, e.g. ``[1]``) does not fit ``hint``."""

    def __init__(self, hint: Any, value: Any, suffix: str = "") -> None:
        super().__init__(f"{suffix or 'value'} must be {describe(hint)}, got {value!r}")
        self.hint, self.value, self.suffix = hint, value, suffix


def describe(hint: Any) -> str:
    """A human name for an annotation: ``int``, ``list of int``, ``str or null``."""
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {describe(args[0])}"
        return f"list of {len(args)} values ({', '.join(describe(a) for a in args)})"
    if origin is dict:
        return "mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def coerce(value: Any, hint: Any) -> Any:
    """``value`` converted to fit ``hint`` (lists -> tuples, int -> float), or :class:`Mismatch`."""
    if hint is Any:
        return value
    if hint is type(None):
        if value is None:
            return None
        raise Mismatch(hint, value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = None
        for arg in typing.get_args(hint):
            try:
                return coerce(value, arg)
            except Mismatch as m:
                inner = inner or (m if m.suffix else None)
        if inner is not None:  # the value had the shape of one choice: name the element that failed
            raise inner
        raise Mismatch(hint, value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise Mismatch(hint, value)
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(args) != len(value):
            raise Mismatch(hint, value)
        out = []
        for i, (v, a) in enumerate(zip(value, args, strict=True)):
            try:
                out.append(coerce(v, a))
            except Mismatch as m:
                raise Mismatch(m.hint, m.value, f"[{i}]{m.suffix}") from None
        return tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise Mismatch(hint, value)
        return dict(value)
    if origin is typing.Literal:
        if isinstance(value, bool) or value not in typing.get_args(hint):
            raise Mismatch(hint, value)
        return value
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):  # YAML 1.1 reads 3e-3 as a string
            return float(value)
        raise Mismatch(hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise Mismatch(hint, value)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise Mismatch(hint, value)
    return value
