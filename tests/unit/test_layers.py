"""The house in layers (docs/layers.toml, docs/architecture.md): every module is assigned a
layer, imports point only down (or within a layer), no import circles, and eventsourcing's
private persistence API is touched by one module only."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dispatch", "consumers")
EVENTSTORE = "dispatch.eventstore"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            candidates = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
                break
    return targets


def _layer_map() -> tuple[list[str], dict[str, list[str]]]:
    config = tomllib.loads((ROOT / "docs" / "layers.toml").read_text(encoding="utf-8"))
    order = config["layers"]["order"]
    return order, {layer: config[layer]["modules"] for layer in order}


def _layer_of(name: str, patterns: dict[str, list[str]]) -> str | None:
    best: tuple[int, str] | None = None
    for layer, names in patterns.items():
        for pattern in names:
            if pattern == name or (pattern.endswith(".*") and (name + ".").startswith(pattern[:-1])):
                score = len(pattern)
                if best is None or score > best[0]:
                    best = (score, layer)
    return best[1] if best else None


def test_every_module_is_assigned_a_layer() -> None:
    _, patterns = _layer_map()
    assert [m for m in MODULES if _layer_of(m, patterns) is None] == []


def test_imports_point_only_down() -> None:
    order, patterns = _layer_map()
    rank = {layer: i for i, layer in enumerate(order)}
    upward = []
    for name, path in MODULES.items():
        mine = rank[_layer_of(name, patterns) or order[-1]]
        for target in sorted(_imports(name, path)):
            theirs = rank[_layer_of(target, patterns) or order[-1]]
            if theirs > mine:
                upward.append(f"{name} ({order[mine]}) imports {target} ({order[theirs]})")
    assert upward == []


def test_nothing_in_dispatch_below_the_entry_points_imports_consumers() -> None:
    _, patterns = _layer_map()
    assert [name for name, path in MODULES.items() if name.startswith("dispatch")
            and _layer_of(name, patterns) != "entry"
            and any(t.startswith("consumers") for t in _imports(name, path))] == []


def test_no_import_circles() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    # a module importing its own package (click's group in dispatch.cli, which then imports its
    # command modules) is not counted: Python has run the package's __init__ before the module
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                circles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


_PRIVATE = re.compile(r"\b(_insert_stored_events|_insert_tracking|_lock_table|_notify_channel|_record|"
                      r"_take_snapshots)\b|\.datastore\b|events_table_name|tracking_table_name|\.channel_name\b")


def test_eventsourcing_persistence_internals_live_in_one_module() -> None:
    touching = sorted(name for name, path in MODULES.items() if _PRIVATE.search(path.read_text(encoding="utf-8")))
    assert touching == [EVENTSTORE]
