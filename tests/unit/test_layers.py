"""The house in layers (docs/layers.toml, docs/architecture.md): every module is assigned a
layer by the folder it lies in, imports point only down (or within a layer), no import
circles, and eventsourcing's private persistence API is touched by one module only. The layout
says it too: ``dispatch/`` itself holds a few files and the layer folders, no two modules have
names that differ only by an ending, and every module opens with what it is for."""

from __future__ import annotations

import ast
import itertools
import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dispatch", "consumers")
EVENTSTORE = "dispatch.adapters.eventstore"


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


def _layer_map() -> tuple[list[str], dict[str, tuple[list[str], list[str]]]]:
    """The layers, lowest first, and each one's folders and single files (paths from the root)."""
    config = tomllib.loads((ROOT / "docs" / "layers.toml").read_text(encoding="utf-8"))
    order = config["layers"]["order"]
    return order, {layer: (config[layer].get("folders", []), config[layer].get("files", [])) for layer in order}


def _layer_of(name: str, places: dict[str, tuple[list[str], list[str]]]) -> str | None:
    """The layer of a module: the one naming its file, else the one naming its nearest folder."""
    path = MODULES[name].relative_to(ROOT).as_posix()
    best: tuple[int, str] | None = None
    for layer, (folders, files) in places.items():
        if path in files:
            return layer
        for folder in folders:
            if path.startswith(folder.rstrip("/") + "/") and (best is None or len(folder) > best[0]):
                best = (len(folder), layer)
    return best[1] if best else None


def test_every_module_is_assigned_a_layer() -> None:
    _, places = _layer_map()
    assert [m for m in MODULES if _layer_of(m, places) is None] == []


def test_imports_point_only_down() -> None:
    order, places = _layer_map()
    rank = {layer: i for i, layer in enumerate(order)}
    upward = []
    for name, path in MODULES.items():
        mine = rank[_layer_of(name, places) or order[-1]]
        for target in sorted(_imports(name, path)):
            theirs = rank[_layer_of(target, places) or order[-1]]
            if theirs > mine:
                upward.append(f"{name} ({order[mine]}) imports {target} ({order[theirs]})")
    assert upward == []


def test_nothing_in_dispatch_below_the_entry_points_imports_consumers() -> None:
    _, places = _layer_map()
    assert [name for name, path in MODULES.items() if name.startswith("dispatch")
            and _layer_of(name, places) != "entry"
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


def test_each_layer_names_folders_that_exist_and_no_folder_twice() -> None:
    _, places = _layer_map()
    named = [folder for folders, _ in places.values() for folder in folders]
    named += [file for _, files in places.values() for file in files]
    assert [p for p in named if not (ROOT / p).exists()] == []
    assert len(named) == len(set(named))


def test_the_package_itself_holds_few_modules() -> None:
    """The layer folders are the first thing a newcomer meets in ``dispatch/``."""
    assert len(list((ROOT / "dispatch").glob("*.py"))) <= 8


def _stem(name: str) -> str:
    return name.rpartition(".")[2].replace("_", "").lower()


def _alike(a: str, b: str) -> bool:
    """One name, or two that differ only by an ending: the same letters for at least their first
    two thirds (and four letters) — ``caseno``/``casenumbers``, ``parked``/``parking``,
    ``calendar``/``calendar_admin``, ``boards``/``web/boards``."""
    x, y = _stem(a), _stem(b)
    same = len(os.path.commonprefix([x, y]))
    return x == y or (same >= 4 and 3 * same >= 2 * min(len(x), len(y)))


def test_alike_finds_names_that_differ_only_by_an_ending() -> None:
    assert _alike("dispatch.caseno", "dispatch.casenumbers") and _alike("dispatch.parked", "dispatch.parking")
    assert _alike("dispatch.calendar", "dispatch.calendar_admin") and _alike("dispatch.boards", "dispatch.web.boards")
    assert not _alike("dispatch.domain.case_number", "dispatch.adapters.case_register")
    assert not _alike("dispatch.projections.timeline", "dispatch.domain.timewindow")


def test_no_two_modules_have_names_that_differ_only_by_an_ending() -> None:
    names = sorted(n for n, p in MODULES.items() if p.name not in ("__init__.py", "__main__.py"))
    assert [(a, b) for a, b in itertools.combinations(names, 2) if _alike(a, b)] == []


def test_every_module_opens_with_what_it_is_for() -> None:
    unsaid = [name for name, path in MODULES.items()
              if not (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()]
    assert unsaid == []
