"""System checks for registered tools: what the Realtime API or Django would refuse.

E010 a tool name outside ``^[a-zA-Z0-9_-]{1,64}$`` · E011 ``parameters`` is not a JSON
Schema object (``type: object``, ``properties`` of schemas, ``required`` naming them) ·
E012 ``permission`` is not an ``"app_label.codename"`` string · E013 an explicit schema
and the function's signature disagree · W004 ``permission`` names no permission any
installed model declares (a warning: a data migration or a rules-based auth backend may
provide it; silence it in ``SILENCED_SYSTEM_CHECKS`` if so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Warning

from .registration import RealtimeTool, registry

ID = "django_realtime."

# The function-name rule of OpenAI's function tools: "a-z, A-Z, 0-9, or contain
# underscores and dashes, with a maximum length of 64"
# (https://platform.openai.com/docs/api-reference/chat/create).
NAME_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
PERMISSION_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.\S+")


def declared_permissions() -> set[str]:
    """Every ``app_label.codename`` that ``migrate`` creates for the installed models."""
    names: set[str] = set()
    for model in apps.get_models():
        opts = model._meta
        for action in opts.default_permissions:
            names.add(f"{opts.app_label}.{action}_{opts.model_name}")
        for codename, _label in opts.permissions:
            names.add(f"{opts.app_label}.{codename}")
    return names


def _schema_problem(parameters: Any) -> str | None:
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        return 'it must be a JSON Schema object with "type": "object"'
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict) or not all(
        isinstance(value, dict) for value in properties.values()
    ):
        return '"properties" must map each argument name to a schema'
    required = parameters.get("required", [])
    if not isinstance(required, list) or not all(name in properties for name in required):
        return '"required" must list names from "properties"'
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError):
        return "it must be plain JSON"
    return None


def _signature_problem(tool: RealtimeTool) -> str | None:
    properties = tool.parameters.get("properties", {})
    accepted = {parameter.name for parameter in tool.arguments}
    extra = sorted(set(properties) - accepted)
    if extra and not tool.accepts_extra:
        return f"the schema offers {extra[0]!r}, which the function does not accept"
    for parameter in tool.arguments:
        if parameter.required and parameter.name not in properties:
            return f"the function requires {parameter.name!r}, which the schema does not offer"
    return None


def _check_tool(tool: RealtimeTool, permissions: set[str]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    where = f"Realtime tool {tool.name!r}"
    if not isinstance(tool.name, str) or not NAME_PATTERN.fullmatch(tool.name):
        messages.append(
            Error(
                f"{where}: the Realtime API refuses this function name.",
                hint="Use 1 to 64 letters, digits, underscores or dashes (pass name=).",
                obj=tool.func,
                id=f"{ID}E010",
            )
        )
    problem = _schema_problem(tool.parameters)
    if problem:
        messages.append(
            Error(f"{where}: parameters are refused: {problem}.", obj=tool.func, id=f"{ID}E011")
        )
    elif tool.explicit_parameters and (problem := _signature_problem(tool)):
        messages.append(
            Error(
                f"{where}: {problem}.",
                hint="Make parameters= and the function's keyword parameters agree.",
                obj=tool.func,
                id=f"{ID}E013",
            )
        )
    permission = tool.permission
    if permission is None:
        return messages
    if not isinstance(permission, str) or not PERMISSION_PATTERN.fullmatch(permission):
        messages.append(
            Error(
                f"{where}: permission {permission!r} is not an 'app_label.codename' string.",
                hint="e.g. permission='orders.view_order', or None for anyone on the call.",
                obj=tool.func,
                id=f"{ID}E012",
            )
        )
    elif permission not in permissions:
        messages.append(
            Warning(
                f"{where}: no installed model declares the permission {permission!r}, so "
                "only superusers may use the tool.",
                hint="Check the spelling, or declare it in a model's Meta.permissions.",
                obj=tool.func,
                id=f"{ID}W004",
            )
        )
    return messages


def check_tools(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every registered tool the Realtime API would refuse, or Django could never allow."""
    permissions = declared_permissions()
    messages: list[CheckMessage] = []
    for tool in registry.values():
        if app_configs is not None and (
            apps.get_containing_app_config(tool.func.__module__) not in app_configs
        ):
            continue
        messages.extend(_check_tool(tool, permissions))
    return messages
