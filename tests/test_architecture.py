"""The house rules, enforced: imports flow one way, no import circle, modules stay small.

The package is walked on disk (``importlib`` finds it, ``ast`` reads every module;
nothing is imported, so the optional extras need not be installed). Every import
counts, at module level or inside a function (a lazy import is still a dependency),
except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "django_realtime"
MAX_LINES = 350

#: Layers, lowest first: a module may import its own layer or a lower one, never a
#: higher one. Entries are module names or package prefixes (the longest match wins);
#: a module that matches nothing fails the test, so each new module is placed on purpose.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("django_realtime", "django_realtime.exceptions", "django_realtime.conf")),
    (
        "rules",
        (
            "django_realtime.rules",
            "django_realtime.signing",
            "django_realtime.bodies",
            "django_realtime.sip.validators",
            "django_realtime.sip.headers",
            "django_realtime.sip",  # the package docstring only
            "django_realtime.control",  # the package docstring only
            "django_realtime.control.prices",
            "django_realtime.control.pricing",
            "django_realtime.control.leash",
            "django_realtime.tools.schema",
            # issue 10: the registry and its definitions are pure (payloads uses them)
            "django_realtime.tools.registration",
            "django_realtime.tools.definitions",
        ),
    ),
    ("payloads", ("django_realtime.overrides", "django_realtime.payloads")),
    (
        "models",
        (
            "django_realtime.call_models",
            "django_realtime.usage_models",
            "django_realtime.models",
            "django_realtime.rows",  # one-row statements for the audit path
            "django_realtime.webhook_models",
            "django_realtime.sip.models",
        ),
    ),
    (
        "client / records",
        (
            "django_realtime.client",
            "django_realtime.audit",
            "django_realtime.signals",
            "django_realtime.throttling",
            "django_realtime.pruning",
            "django_realtime.preset_cache",
            "django_realtime.counters",
            "django_realtime.sip.signals",
            "django_realtime.control.endpoint",
            "django_realtime.control.sideband",  # the package: the socket and its connector
            "django_realtime.control.wakeup",  # LISTEN (workers) and its channel (calls)
            "django_realtime.tools",
            "django_realtime.calls",
            "django_realtime.quotas",
            "django_realtime.usage",
        ),
    ),
    ("gate", ("django_realtime.gate", "django_realtime.webhooks", "django_realtime.sip.routing")),
    ("telephony actions", ("django_realtime.sip.actions",)),
    (
        "call control",
        (
            "django_realtime.control.controller",
            "django_realtime.control.leases",
            "django_realtime.control.store",
            "django_realtime.control.tool_dispatch",
            "django_realtime.control.transcripts",
            "django_realtime.control.quota_watch",
        ),
    ),
    ("workers", ("django_realtime.control.worker",)),
    (
        "handlers / checks",
        (
            "django_realtime.sip.incoming",
            "django_realtime.checks",
            "django_realtime.sip.checks",
            "django_realtime.tools.checks",
            "django_realtime.usage_checks",
        ),
    ),
    (
        "edges",
        (
            "django_realtime.base_views",
            "django_realtime.views",
            "django_realtime.call_views",
            "django_realtime.async_views",
            "django_realtime.async_urls",
            "django_realtime.serializers",
            "django_realtime.urls",
            "django_realtime.admin",
            "django_realtime.sip.admin",
            "django_realtime.management",
            "django_realtime.templatetags",
            "django_realtime.apps",
            "django_realtime.sip.apps",
            "django_realtime.migrations",
            "django_realtime.sip.migrations",
        ),
    ),
    # The testing kit sits on top of everything: the app never imports it.
    (
        "testing: wire",
        (
            "django_realtime.testing.errors",
            "django_realtime.testing.state",
            "django_realtime.testing.contract",
            "django_realtime.testing.loopback",
            "django_realtime.testing.wire",
        ),
    ),
    (
        "testing: contract",
        (
            "django_realtime.testing.validation",
            "django_realtime.testing.effective",
            "django_realtime.testing.media",
            "django_realtime.testing.clock",
            "django_realtime.testing.script",
            "django_realtime.testing.script_player",
            "django_realtime.testing.sideband",
            "django_realtime.testing.sideband_server",
        ),
    ),
    (
        "testing: adapters",
        (
            "django_realtime.testing.faults",
            "django_realtime.testing.endpoints",
            "django_realtime.testing.transport",
            "django_realtime.testing.asgi",
            "django_realtime.testing.peer",
            "django_realtime.testing.sideband_memory",
        ),
    ),
    ("testing: fake", ("django_realtime.testing.fake",)),
    (
        "testing: entry points",
        (
            "django_realtime.testing",
            "django_realtime.testing.server",
            "django_realtime.testing.pytest_plugin",
            "django_realtime.testing.pytest_sideband",
        ),
    ),
]

#: Modules allowed over MAX_LINES, each with the reason. Keep it empty if you can.
LINE_EXEMPTIONS: dict[str, str] = {}


def package_root() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def modules() -> dict[str, Path]:
    root = package_root()
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (``from x import y`` counts ``x.y`` if that
    is a module, else ``x``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    anchor = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), anchor)
                if node.level
                else node.module or ""
            )
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            matches = name == entry or name.startswith(entry + ".")
            if matches and (best is None or len(entry) > best[0]):
                best = (len(entry), index)
    return None if best is None else best[1]


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_every_module_has_a_layer() -> None:
    assert [name for name in modules() if layer_of(name) is None] == []


def test_no_upward_import() -> None:
    upward = []
    for name, targets in graph().items():
        own = layer_of(name)
        for target in sorted(targets):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{name} ({LAYERS[own][0]}) -> {target} ({LAYERS[theirs][0]})")
    assert upward == []


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circle() -> None:
    # A package importing its own submodules (re-exports) is not a circle unless a
    # submodule imports the package back, which the graph shows as an edge too.
    assert find_cycles(graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import client\n", {"django_realtime.client"}),
        ("from .models import SessionPreset\n", {"django_realtime.models"}),
        ("from django_realtime.sip.models import SipCall\n", {"django_realtime.sip.models"}),
        ("def f():\n    from .views import x\n", {"django_realtime.views"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .views import x\n", set()),
    ],
)
def test_imports_are_read_as_written(tmp_path: Path, source: str, expected: set[str]) -> None:
    path = tmp_path / "gate.py"
    path.write_text(source)
    known = set(modules())
    assert imports_of("django_realtime.gate", path, known) == expected


def test_modules_stay_small() -> None:
    too_long = {
        name: len(path.read_text().splitlines())
        for name, path in modules().items()
        if ".migrations" not in name and name not in LINE_EXEMPTIONS
    }
    assert {name: n for name, n in too_long.items() if n > MAX_LINES} == {}
