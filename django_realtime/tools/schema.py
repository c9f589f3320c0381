"""Type hints to JSON Schema, and decoded JSON arguments back into those types.

The two directions walk the same small set of hints, so a tool's advertised schema and
the check of what the model sends can never disagree: ``str``, ``int``, ``float``,
``bool``, ``Literal[...]``, an ``Enum``, ``list[T]``, ``T | None`` (``Optional[T]``) and
``Annotated[T, "description"]`` around any of them.
"""

from __future__ import annotations

import enum
import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ..exceptions import RealtimeError

SUPPORTED = "str, int, float, bool, Literal[...], an Enum, list[T] or T | None"

_SCALARS: tuple[tuple[type, str], ...] = (
    (str, "string"),
    (int, "integer"),
    (float, "number"),
    (bool, "boolean"),
)


class UnsupportedHint(TypeError):
    """A hint outside the supported set; the caller adds which tool and parameter."""


class ArgumentError(RealtimeError, ValueError):
    """Arguments from the model that do not fit the tool; the message is safe to show it."""


def _json_type(value: Any) -> str | None:
    """The JSON Schema type of a Literal or Enum value, or None if we refuse it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


def _split_optional(hint: Any) -> tuple[bool, Any]:
    """``(True, T)`` for ``T | None`` / ``Optional[T]``, else ``(False, hint)``."""
    if get_origin(hint) not in (Union, types.UnionType):
        return False, hint
    members = [arg for arg in get_args(hint) if arg is not type(None)]
    if len(members) != 1:
        raise UnsupportedHint(f"{_hint_name(hint)}: unions other than T | None are not supported")
    return len(members) < len(get_args(hint)), members[0]


def _enum_values(values: list[Any], hint: Any) -> dict[str, Any]:
    kinds = {_json_type(value) for value in values}
    if not values or None in kinds:
        raise UnsupportedHint(f"{_hint_name(hint)}: choices must be strings, numbers or booleans")
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    nullable = dict(schema)
    if "type" in nullable:
        nullable["type"] = [nullable["type"], "null"]
    if "enum" in nullable:
        nullable["enum"] = [*nullable["enum"], None]
    return nullable


def schema_for(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one parameter's hint; :class:`UnsupportedHint` if we have none."""
    if get_origin(hint) is Annotated:
        inner, *metadata = get_args(hint)
        schema = schema_for(inner)
        text = next((item for item in metadata if isinstance(item, str)), None)
        return {**schema, "description": text} if text else schema
    optional, inner = _split_optional(hint)
    if optional:
        return _nullable(schema_for(inner))
    origin = get_origin(hint)
    if origin is Literal:
        return _enum_values(list(get_args(hint)), hint)
    if origin is list:
        args = get_args(hint)
        return {"type": "array", "items": schema_for(args[0])}
    if hint is list:
        raise UnsupportedHint("list needs an item type, such as list[str]")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_values([member.value for member in hint], hint)
    for python_type, json_type in _SCALARS:
        if hint is python_type:
            return {"type": json_type}
    raise UnsupportedHint(f"{_hint_name(hint)} is not supported; use {SUPPORTED}")


def _same(a: Any, b: Any) -> bool:
    # ``True == 1`` in Python; JSON keeps booleans and numbers apart, and so do we.
    return type(a) is type(b) and bool(a == b)


def _choices(values: list[Any]) -> str:
    return ", ".join(json.dumps(value) for value in values)


def _coerce_scalar(value: Any, hint: type, where: str) -> Any:
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if not isinstance(value, bool) and isinstance(value, int | float):
        if hint is float:
            return float(value)
        if hint is int and (isinstance(value, int) or value.is_integer()):
            return int(value)
    article = "an" if hint is int else "a"
    kind = {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]
    raise ArgumentError(f"{where} must be {article} {kind}")


def coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` (decoded JSON) as the Python value ``hint`` describes.

    Raises :class:`ArgumentError` naming ``where`` (the parameter, ``tags[2]`` for an
    item); the message never repeats the value, which the model may have made long.
    """
    if get_origin(hint) is Annotated:
        return coerce(value, get_args(hint)[0], where)
    optional, inner = _split_optional(hint)
    if optional:
        return None if value is None else coerce(value, inner, where)
    origin = get_origin(hint)
    if origin is Literal:
        options = list(get_args(hint))
        for option in options:
            if _same(option, value):
                return option
        raise ArgumentError(f"{where} must be one of {_choices(options)}")
    if origin is list:
        if not isinstance(value, list):
            raise ArgumentError(f"{where} must be a list")
        item_hint = get_args(hint)[0]
        return [coerce(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if _same(member.value, value):
                return member
        raise ArgumentError(f"{where} must be one of {_choices([m.value for m in hint])}")
    return _coerce_scalar(value, hint, where)


def is_supported(hint: Any) -> bool:
    try:
        schema_for(hint)
    except UnsupportedHint:
        return False
    return True


def loads_object(text: str) -> dict[str, Any]:
    """Decode a function call's ``arguments``: a JSON object, NaN and Infinity refused."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        value = json.loads(text, parse_constant=refuse)
    except (TypeError, ValueError) as err:
        raise ArgumentError("the arguments are not valid JSON") from err
    if not isinstance(value, dict):
        raise ArgumentError("the arguments must be a JSON object")
    return value
