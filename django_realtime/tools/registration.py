"""The registry of server-side tools and the ``@realtime_tool`` decorator that fills it.

Problems that make a tool impossible to build (an unsupported type hint, a clashing name,
a signature we cannot call) raise :class:`ToolDefinitionError` when the module is
imported. Problems the Realtime API would refuse (the name's alphabet, the schema's
shape, the permission string) are reported by the system check in ``tools.checks``,
like the rest of Django's definition errors, so ``manage.py check`` lists all of them.
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, overload

from django.utils.module_loading import autodiscover_modules

from ..exceptions import RealtimeConfigurationError
from .schema import ArgumentError, UnsupportedHint, coerce, is_supported, schema_for

F = TypeVar("F", bound=Callable[..., Any])

#: The hint of a parameter we pass through as decoded JSON, unchecked (only possible
#: with an explicit ``parameters=`` schema).
NO_HINT: Any = inspect.Parameter.empty

#: The module every installed app may ship its tools in, like ``admin.py``.
MODULE_NAME = "realtime_tools"


class ToolDefinitionError(RealtimeConfigurationError):
    """A function cannot be registered as a tool as written; the message says why."""


@dataclass(frozen=True)
class ToolParameter:
    """One argument the model passes, by keyword, after ``user`` and ``call``."""

    name: str
    hint: Any
    required: bool


@dataclass(frozen=True, eq=False)
class RealtimeTool:
    """A registered server-side tool.

    ``name``, ``description`` and ``parameters`` are what the session advertises;
    ``permission`` (``"app_label.codename"`` or ``None`` for anyone on the call) is
    checked for the call's user before every run; ``timeout`` (seconds) overrides the
    caller's default when set.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    permission: str | None
    timeout: float | None
    func: Callable[..., Any]
    is_async: bool
    arguments: tuple[ToolParameter, ...]
    accepts_extra: bool
    explicit_parameters: bool

    def definition(self) -> dict[str, Any]:
        """The GA session ``tools`` entry (a copy: callers may change it freely)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for ``func``; :class:`ArgumentError` when they do not fit."""
        known = {parameter.name: parameter for parameter in self.arguments}
        unknown = sorted(set(arguments) - set(known))
        if unknown and not self.accepts_extra:
            raise ArgumentError(f"unknown argument {_short(unknown[0])}")
        for expected in self.arguments:
            if expected.required and expected.name not in arguments:
                raise ArgumentError(f"missing argument {expected.name}")
        bound: dict[str, Any] = {}
        for key, value in arguments.items():
            parameter = known.get(key)
            if parameter is None or parameter.hint is NO_HINT:
                bound[key] = value
            else:
                bound[key] = coerce(value, parameter.hint, key)
        return bound


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


_tools: dict[str, RealtimeTool] = {}

#: Every registered tool by name (read-only; use ``@realtime_tool`` and :func:`unregister`).
registry: Mapping[str, RealtimeTool] = MappingProxyType(_tools)


def first_paragraph(docstring: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    text = inspect.cleandoc(docstring or "").strip()
    paragraph = re.split(r"\n\s*\n", text, maxsplit=1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def _type_hints(func: Callable[..., Any], tool_name: str, explicit: bool) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception as err:  # NameError, or anything a string annotation evaluates to
        if explicit:  # the schema is given; we only lose argument coercion
            return {}
        raise ToolDefinitionError(
            f"Cannot resolve the type hints of realtime tool {tool_name!r}: {err}"
        ) from err


def _tool_parameters(
    func: Callable[..., Any], tool_name: str, explicit: bool
) -> tuple[list[ToolParameter], bool]:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) < 2 or any(p.kind not in positional for p in params[:2]):
        raise ToolDefinitionError(
            f"Realtime tool {tool_name!r} must take (user, call, ...) as its first two parameters."
        )
    hints = _type_hints(func, tool_name, explicit)
    result: list[ToolParameter] = []
    accepts_extra = False
    for param in params[2:]:
        where = f"Realtime tool {tool_name!r}, parameter {param.name!r}"
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            if not explicit:
                raise ToolDefinitionError(
                    f"{where}: **{param.name} cannot be described from the signature; "
                    "pass parameters= with a JSON schema."
                )
            accepts_extra = True
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise ToolDefinitionError(f"{where}: the model passes arguments by keyword only.")
        hint = hints.get(param.name, NO_HINT)
        if not explicit:
            if hint is NO_HINT:
                raise ToolDefinitionError(f"{where} needs a type hint.")
            try:
                schema_for(hint)
            except UnsupportedHint as err:
                raise ToolDefinitionError(f"{where}: {err}.") from err
        elif hint is not NO_HINT and not is_supported(hint):
            hint = NO_HINT
        result.append(ToolParameter(param.name, hint, param.default is inspect.Parameter.empty))
    return result, accepts_extra


def _derived_schema(arguments: list[ToolParameter]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {p.name: schema_for(p.hint) for p in arguments},
        "required": [p.name for p in arguments if p.required],
        "additionalProperties": False,
    }


def build_tool(
    func: Callable[..., Any],
    *,
    permission: str | None = None,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> RealtimeTool:
    """A :class:`RealtimeTool` for ``func`` (not registered; see :func:`realtime_tool`)."""
    if not inspect.isfunction(func) and not inspect.ismethod(func):
        raise ToolDefinitionError(f"A realtime tool must be a function, not {func!r}.")
    tool_name = name if name is not None else func.__name__
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ToolDefinitionError(f"Realtime tool {tool_name!r} must return, not yield.")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise ToolDefinitionError(f"Realtime tool {tool_name!r}: parameters= must be a dict.")
    if description is not None and not isinstance(description, str):
        raise ToolDefinitionError(f"Realtime tool {tool_name!r}: description= must be a str.")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ToolDefinitionError(
            f"Realtime tool {tool_name!r}: timeout= must be a positive number of seconds."
        )
    explicit = parameters is not None
    arguments, accepts_extra = _tool_parameters(func, tool_name, explicit)
    # A copy: the site's dict may be shared or changed later; the registry's must not be.
    schema = _derived_schema(arguments) if parameters is None else copy.deepcopy(dict(parameters))
    return RealtimeTool(
        name=tool_name,
        description=description if description is not None else first_paragraph(func.__doc__),
        parameters=schema,
        permission=permission,
        timeout=None if timeout is None else float(timeout),
        func=func,
        is_async=inspect.iscoroutinefunction(func),
        arguments=tuple(arguments),
        accepts_extra=accepts_extra,
        explicit_parameters=explicit,
    )


def register(tool: RealtimeTool) -> RealtimeTool:
    """Add ``tool`` to :data:`registry`; a second tool of the same name is an error."""
    existing = _tools.get(tool.name)
    if existing is not None:
        raise ToolDefinitionError(
            f"A realtime tool named {tool.name!r} is already registered "
            f"({existing.func.__module__}.{existing.func.__qualname__}); "
            "pass name= to register this one under another name."
        )
    _tools[tool.name] = tool
    return tool


def unregister(name: str) -> RealtimeTool | None:
    """Remove a tool (a site replacing a third-party app's tool, or a test); returns it."""
    return _tools.pop(name, None)


@overload
def realtime_tool(func: F, /) -> F: ...


@overload
def realtime_tool(
    *,
    permission: str | None = None,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Callable[[F], F]: ...


def realtime_tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    permission: str | None = None,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Any:
    """Register ``func(user, call, **params)`` as a server-side Realtime tool.

    Use it bare (``@realtime_tool``) or with options. ``permission`` is an
    ``"app_label.codename"`` the call's (still active) user must have; ``None`` lets
    anyone on a call whose preset offers the tool use it, including SIP callers with no
    Django user. The JSON schema comes from the keyword parameters' type hints unless
    ``parameters`` gives one; the description is the docstring's first paragraph unless
    ``description`` is given. ``timeout`` (seconds) overrides the site default. The
    function is returned unchanged, so it can still be called directly.
    """
    if func is not None and not callable(func):
        raise ToolDefinitionError(
            "realtime_tool takes its options as keywords, e.g. "
            "@realtime_tool(permission='orders.view_order')."
        )
    options: dict[str, Any] = {
        "permission": permission,
        "name": name,
        "description": description,
        "parameters": parameters,
        "timeout": timeout,
    }

    def decorate(function: F) -> F:
        register(build_tool(function, **options))
        return function

    return decorate(func) if func is not None else decorate


def autodiscover() -> None:
    """Import ``realtime_tools`` from every installed app (called from ``ready()``)."""
    autodiscover_modules(MODULE_NAME)
