"""Validated reference data: places, departments, categories, priorities and SLA rules.

A reference file is YAML or JSON (``.json`` is read as JSON, anything else as YAML)::

    sample: false                  # optional; true marks bundled demo data
    timezone: Asia/Shanghai        # an IANA time-zone name
    working_hours: ["08:30-12:00", "13:30-17:30"]    # "HH:MM-HH:MM" periods, no overlaps
    calendar_overrides:            # optional; "YYYY-MM-DD": workday | holiday, last word on a day
      "2025-10-11": workday
    districts:                     # 区 → streets 街道/镇 → communities 社区/村(居) → grids 网格
      - id: jinshan
        name: 金山区
        streets:
          - id: caojing
            name: 漕泾镇
            communities:
              - id: cj-shuiku
                name: 水库村
                grids: [{id: cj-shuiku-g01, name: 北片网格}]   # either a list of grids ...
              - {id: cj-hutang, name: 护塘村, grid_count: 2}     # ... or grid_count: N, which makes
                                   # grids cj-hutang-g01 "第1网格" … cj-hutang-g02 "第2网格"
    departments: [{id: chengguan, name: 城管}]
    priorities: [{id: normal, name: 一般}]
    categories:
      - {id: city_appearance, name: 市容环卫, kind: grid,          # kind: grid | hotline
         lead_department: chengguan, cooperating: [huanwei]}      # cooperating: optional list
    sla:                           # minutes, each counted from the dispatch (accept/dispatch: from the report)
      - {category: "*", priority: "*", ack_minutes: 30, handle_minutes: 1350,
         feedback_minutes: 1800, time_basis: working, escalate_every_minutes: 120,
         accept_minutes: 30, dispatch_minutes: 60}     # the centre's own; optional, 30 and 60 by default

Rules: unknown keys are refused; ids are non-empty strings without whitespace, unique within
their kind (all grids, all communities, …), names non-empty; a category's departments must be
listed under ``departments``; an SLA rule names a known category and priority or ``"*"``, at most
one rule per pair, and a ``("*", "*")`` rule must exist; minutes are positive integers with
ack ≤ handle ≤ feedback and accept ≤ dispatch; ``time_basis`` is ``calendar`` or ``working``;
``calendar_years`` lists years whose holidays and 调休 days ``calendar_overrides`` gives in full
(beyond the holiday table the database keeps). The most specific rule
wins: (category, priority) > (category, *) > (*, priority) > (*, *). Any problem raises one
``ReferenceDataError(file, path, problem)``, e.g. path ``categories[3].lead_department``.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cache
from types import SimpleNamespace
from datetime import date
from importlib import resources
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


from dispatch.domain.calendar import parse_working_hours
from dispatch.domain.errors import (ReferenceDataError, UnknownCategory, UnknownCommunity, UnknownDepartment,
                                    UnknownGrid, UnknownPriority, UnknownReference, UnknownStreet, UnknownDistrict)
from dispatch.domain.geo import check_geometry

__all__ = ["Category", "Community", "Department", "District", "Grid", "Place", "Priority",
           "Reference", "SlaRule", "Street", "load_reference", "parse_reference_text",
           "read_reference_data", "reference_from_dict"]

_SAMPLE_NAME = "sample.yaml (bundled sample)"


@dataclass(frozen=True)
class _Named:
    id: str
    name: str


@dataclass(frozen=True)
class District(_Named):
    pass


@dataclass(frozen=True)
class Street(_Named):
    district_id: str


@dataclass(frozen=True)
class Community(_Named):
    street_id: str


@dataclass(frozen=True)
class Grid(_Named):
    community_id: str


@dataclass(frozen=True)
class Place:
    """The ladder grid → community → street → district for one grid."""
    grid: Grid
    community: Community
    street: Street
    district: District


@dataclass(frozen=True)
class Department(_Named):
    pass


@dataclass(frozen=True)
class Priority(_Named):
    pass


@dataclass(frozen=True)
class Category(_Named):
    kind: str  # "grid" | "hotline"
    lead_department: str
    cooperating: tuple[str, ...]


@dataclass(frozen=True)
class SlaRule:
    category: str  # a category id or "*"
    priority: str  # a priority id or "*"
    ack_minutes: int
    handle_minutes: int
    feedback_minutes: int
    time_basis: str  # "calendar" | "working"
    escalate_every_minutes: int  # time between escalation rungs once a deadline is missed
    accept_minutes: int = 30  # the centre's own deadlines, counted from the report (受理, 派遣)
    dispatch_minutes: int = 60


_T = TypeVar("_T", bound=_Named)


def _lookup(table: dict[str, _T], key: str, error: type[UnknownReference],
            where: Callable[[_T], str] | None = None) -> _T:
    """By id, else by a name that exactly one entry carries; an ambiguous name lists the candidates."""
    if key in table:
        return table[key]
    named = [item for item in table.values() if item.name == key]
    if len(named) == 1:
        return named[0]
    if named:
        shown = ", ".join(f"{x.id}" + (f" ({where(x)})" if where else "") for x in named[:8])
        more = f" and {len(named) - 8} more" if len(named) > 8 else ""
        raise error(key, f"{len(named)} {error.kind}s are named {key!r}: {shown}{more}; give the id")
    raise error(key)


@dataclass(frozen=True)
class Reference:
    sample: bool
    timezone: str
    working_hours: tuple[str, ...]
    calendar_overrides: dict[date, bool]  # True = working day
    districts: dict[str, District]
    streets: dict[str, Street]
    communities: dict[str, Community]
    grids: dict[str, Grid]
    departments: dict[str, Department]
    categories: dict[str, Category]
    priorities: dict[str, Priority]
    sla_rules: tuple[SlaRule, ...]
    # grid id -> its boundary, a GeoJSON Polygon or MultiPolygon in WGS-84 (lon, lat); optional
    boundaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    boundaries_sample: bool = False  # made-up boundaries (the bundled sample's)
    # years whose holidays and 调休 days calendar_overrides gives in full (beyond the holiday table)
    calendar_years: frozenset[int] = frozenset()
    # the holiday table in force: the database's (``dispatch.adapters.holiday_table``), attached by bootstrap
    holidays: Any = None

    def grid(self, key: str) -> Grid:
        """By id, by a name only one grid carries, or as ``community/grid name`` (community by id or name)."""
        if key not in self.grids and "/" in key:
            community_key, name = key.split("/", 1)
            community = self.community(community_key)
            found = [g for g in self.grids.values() if g.community_id == community.id and g.name == name]
            if found:
                return found[0]  # grid names are unique within a community
        return _lookup(self.grids, key, UnknownGrid, lambda g: self.communities[g.community_id].name)

    def community(self, key: str) -> Community:
        return _lookup(self.communities, key, UnknownCommunity)

    def street(self, key: str) -> Street:
        return _lookup(self.streets, key, UnknownStreet)

    def district(self, key: str) -> District:
        return _lookup(self.districts, key, UnknownDistrict)

    def department(self, key: str) -> Department:
        return _lookup(self.departments, key, UnknownDepartment)

    def category(self, key: str) -> Category:
        return _lookup(self.categories, key, UnknownCategory)

    def priority(self, key: str) -> Priority:
        return _lookup(self.priorities, key, UnknownPriority)

    def place(self, grid_key: str) -> Place:
        grid = self.grid(grid_key)
        community = self.communities[grid.community_id]
        street = self.streets[community.street_id]
        return Place(grid, community, street, self.districts[street.district_id])

    def sla_rule(self, category_id: str, priority_id: str) -> SlaRule:
        """The most specific rule: (cat, prio) > (cat, *) > (*, prio) > (*, *)."""
        cat, prio = self.category(category_id).id, self.priority(priority_id).id
        rules = {(r.category, r.priority): r for r in self.sla_rules}
        for pair in ((cat, prio), (cat, "*"), ("*", prio), ("*", "*")):
            if pair in rules:
                return rules[pair]
        raise AssertionError("validated reference data always has a ('*', '*') rule")

    def grids_of_community(self, community_id: str) -> list[Grid]:
        cid = self.community(community_id).id
        return [g for g in self.grids.values() if g.community_id == cid]

    def communities_of_street(self, street_id: str) -> list[Community]:
        sid = self.street(street_id).id
        return [c for c in self.communities.values() if c.street_id == sid]

    def to_dict(self) -> dict[str, Any]:
        """The file form (JSON-serialisable); ``reference_from_dict`` reads it back equal."""
        def named(x: Any) -> dict[str, str]:
            return {"id": x.id, "name": x.name}

        def community(c: Community) -> dict[str, Any]:
            return {**named(c), "grids": [named(g) for g in self.grids_of_community(c.id)]}

        def street(s: Street) -> dict[str, Any]:
            return {**named(s), "communities": [community(c) for c in self.communities_of_street(s.id)]}

        return {
            "sample": self.sample, "timezone": self.timezone, "working_hours": list(self.working_hours),
            "calendar_overrides": {d.isoformat(): "workday" if on else "holiday"
                                   for d, on in self.calendar_overrides.items()},
            **({"calendar_years": sorted(self.calendar_years)} if self.calendar_years else {}),
            "districts": [{**named(d), "streets": [street(s) for s in self.streets.values()
                                                   if s.district_id == d.id]}
                          for d in self.districts.values()],
            "departments": [named(d) for d in self.departments.values()],
            "priorities": [named(p) for p in self.priorities.values()],
            "categories": [{**named(c), "kind": c.kind, "lead_department": c.lead_department,
                            "cooperating": list(c.cooperating)} for c in self.categories.values()],
            "sla": [asdict(r) for r in self.sla_rules],
            **({"boundaries": {"crs": "WGS84", "sample": self.boundaries_sample, "grids": self.boundaries}}
               if self.boundaries else {}),
        }


# --- the file schema --------------------------------------------------------------------------

@cache
def _file_schema() -> Any:
    """The pydantic model a reference file is validated with, built when a file is first read
    (a process that reads only its stored copy never imports pydantic: ``_stored_document``)."""
    from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

    _Id = Annotated[str, StringConstraints(pattern=r"^\S+$")]
    _Name = Annotated[str, StringConstraints(pattern=r"\S")]
    _DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
    _Minutes = Annotated[int, Field(gt=0, le=366 * 24 * 60)]  # MAX_MINUTES


    class _In(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)


    class _NamedIn(_In):
        id: _Id
        name: _Name


    class _CommunityIn(_NamedIn):
        grids: Annotated[list[_NamedIn], Field(min_length=1)] | None = None
        grid_count: Annotated[int, Field(gt=0, le=10_000)] | None = None  # MAX_GRID_COUNT

        @model_validator(mode="after")
        def _grids_or_count(self) -> _CommunityIn:
            if (self.grids is None) == (self.grid_count is None):
                raise ValueError("give exactly one of 'grids' (a list) or 'grid_count' (a number)")
            return self


    class _StreetIn(_NamedIn):
        communities: Annotated[list[_CommunityIn], Field(min_length=1)]  # no empty tree: every level holds something


    class _DistrictIn(_NamedIn):
        streets: Annotated[list[_StreetIn], Field(min_length=1)]


    class _CategoryIn(_NamedIn):
        kind: Literal["grid", "hotline"]
        lead_department: _Id
        cooperating: list[_Id] = []


    class _SlaIn(_In):
        category: _Id
        priority: _Id
        ack_minutes: _Minutes
        handle_minutes: _Minutes
        feedback_minutes: _Minutes
        time_basis: Literal["calendar", "working"]
        escalate_every_minutes: _Minutes
        accept_minutes: _Minutes = 30
        dispatch_minutes: _Minutes = 60


    class _BoundariesIn(_In):
        """Grid boundaries: GeoJSON geometries (Polygon or MultiPolygon) by grid id, all in one
        coordinate system: WGS-84 (GPS) or GCJ-02 (Chinese web maps; converted to WGS-84 on load)."""

        crs: Literal["WGS84", "GCJ02"]
        sample: bool = False
        grids: dict[_Id, dict[str, Any]]


    class _FileIn(_In):
        sample: bool = False
        timezone: str
        working_hours: list[str]
        calendar_overrides: dict[Any, Any] = {}
        calendar_years: list[Annotated[int, Field(ge=2000, le=2100)]] = []
        districts: Annotated[list[_DistrictIn], Field(min_length=1)]
        departments: Annotated[list[_NamedIn], Field(min_length=1)]
        priorities: Annotated[list[_NamedIn], Field(min_length=1)]
        categories: Annotated[list[_CategoryIn], Field(min_length=1)]
        sla: list[_SlaIn]
        boundaries: _BoundariesIn | None = None

    return _FileIn


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _stored_document(data: dict[str, Any]) -> Any:
    """The stored copy of the reference data (``Reference.to_dict`` of data validated when it was
    stored) read as ``_file_schema`` would read it — the same attributes and defaults — so that
    ``reference_from_dict`` builds the same Reference from it; any surprise raises, and the
    caller validates it in full instead."""
    def item(d: dict[str, Any], **defaults: Any) -> SimpleNamespace:
        if not isinstance(d, dict):
            raise TypeError("not a mapping")
        return SimpleNamespace(**{**defaults, **d})

    def community(c: dict[str, Any]) -> SimpleNamespace:
        out = item(c, grids=None, grid_count=None)
        out.grids = [item(g) for g in out.grids] if out.grids is not None else None
        return out

    doc = item(data, sample=False, calendar_overrides={}, calendar_years=[], boundaries=None)
    doc.districts = [item(d) for d in doc.districts]
    for d in doc.districts:
        d.streets = [item(st) for st in d.streets]
        for st in d.streets:
            st.communities = [community(c) for c in st.communities]
    doc.departments = [item(x) for x in doc.departments]
    doc.priorities = [item(x) for x in doc.priorities]
    doc.categories = [item(x, cooperating=[]) for x in doc.categories]
    doc.sla = [item(x, **_SLA_DEFAULTS) for x in doc.sla]
    if doc.boundaries is not None:
        doc.boundaries = item(doc.boundaries, sample=False)
    if set(vars(doc)) - _FILE_KEYS or any(set(vars(r)) - _SLA_KEYS for r in doc.sla):
        raise ValueError("keys the schema does not know")
    return doc


_FILE_KEYS = frozenset({"sample", "timezone", "working_hours", "calendar_overrides", "calendar_years", "districts",
                        "departments", "priorities", "categories", "sla", "boundaries"})
_SLA_KEYS = frozenset(f.name for f in fields(SlaRule))  # a rule's keys and defaults are SlaRule's
_SLA_DEFAULTS = {f.name: f.default for f in fields(SlaRule) if f.default is not MISSING}


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]").lstrip(".")


def _problem(err: Any) -> str:
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of the schema)"
    if err["type"] == "string_pattern_mismatch":
        return f"must be a non-empty string{' without whitespace' if '^' in err['ctx']['pattern'] else ''}"
    msg = str(err["msg"]).removeprefix("Value error, ").replace("Input should", "should")
    got = err.get("input")
    return f"{msg} (got {got!r})" if isinstance(got, (str, int, float, bool)) and "got" not in msg else msg


def _iso_date(text: object) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and _DATE.fullmatch(text) else None
    except ValueError:
        return None


def reference_from_dict(data: dict[str, Any], *, source: str, stored: bool = False) -> Reference:
    """Validate ``data`` (the file form) and build a Reference; ``source`` names it in errors.
    ``stored``: the database's copy, validated when it was stored — read without the file schema
    (every check after it still runs), and validated in full if it does not read."""
    def fail(path: str, problem: str) -> ReferenceDataError:
        return ReferenceDataError(source, path, problem)

    if not isinstance(data, dict):
        raise fail("", f"the top level must be a mapping of keys, not {type(data).__name__}")
    doc = None
    if stored:
        try:
            doc = _stored_document(data)
        except (AttributeError, KeyError, TypeError, ValueError):
            doc = None
    if doc is None:
        from pydantic import ValidationError

        try:
            doc = _file_schema().model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise fail(_path(first["loc"]), _problem(first)) from None
    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {doc.timezone!r} (expected e.g. 'Asia/Shanghai')") from None
    for i, period in enumerate(doc.working_hours):
        try:
            parse_working_hours([period])
        except ValueError as exc:
            raise fail(f"working_hours[{i}]", str(exc)) from None
    try:
        parse_working_hours(doc.working_hours)
    except ValueError as exc:
        raise fail("working_hours", str(exc)) from None
    overrides: dict[date, bool] = {}
    for key, value in doc.calendar_overrides.items():
        day, where = key if type(key) is date else _iso_date(key), f"calendar_overrides.{key}"
        if day is None:
            raise fail(where, f"not a valid date, expected 'YYYY-MM-DD', got {key!r}")
        if day in overrides:
            raise fail(where, f"the date {day.isoformat()} is listed twice")
        if value not in ("workday", "holiday"):
            raise fail(where, f"expected 'workday' or 'holiday', got {value!r}")
        overrides[day] = value == "workday"
    paths: dict[tuple[str, str], str] = {}

    def add(kind: str, table: dict[str, Any], item: Any, path: str) -> None:
        if item.id in table:
            raise fail(path, f"duplicate {kind} id {item.id!r} (first used at {paths[kind, item.id]})")
        table[item.id], paths[kind, item.id] = item, path

    total = sum(len(c.grids) if c.grids is not None else (c.grid_count or 0)
                for d in doc.districts for st in d.streets for c in st.communities)
    if total > MAX_GRIDS:
        raise _limit(source, f"grids exceeded: the file makes {total:,} grids")
    districts: dict[str, District] = {}
    streets: dict[str, Street] = {}
    communities: dict[str, Community] = {}
    grids: dict[str, Grid] = {}
    for di, d in enumerate(doc.districts):
        dp = f"districts[{di}]"
        add("district", districts, District(d.id, d.name), f"{dp}.id")
        for si, s in enumerate(d.streets):
            sp = f"{dp}.streets[{si}]"
            add("street", streets, Street(s.id, s.name, d.id), f"{sp}.id")
            for ci, c in enumerate(s.communities):
                cp = f"{sp}.communities[{ci}]"
                add("community", communities, Community(c.id, c.name, s.id), f"{cp}.id")
                if c.grids is not None:
                    names: dict[str, int] = {}
                    for gi, g in enumerate(c.grids):
                        add("grid", grids, Grid(g.id, g.name, c.id), f"{cp}.grids[{gi}].id")
                        if names.setdefault(g.name, gi) != gi:
                            raise fail(f"{cp}.grids[{gi}].name", f"the grid name {g.name!r} is used twice in "
                                       f"community {c.id!r} (first at grids[{names[g.name]}])")
                else:
                    for n in range(1, (c.grid_count or 0) + 1):
                        add("grid", grids, Grid(f"{c.id}-g{n:02d}", f"第{n}网格", c.id), f"{cp}.grid_count")
    departments: dict[str, Department] = {}
    for i, x in enumerate(doc.departments):
        add("department", departments, Department(x.id, x.name), f"departments[{i}].id")
    priorities: dict[str, Priority] = {}
    for i, x in enumerate(doc.priorities):
        add("priority", priorities, Priority(x.id, x.name), f"priorities[{i}].id")
    categories: dict[str, Category] = {}
    for i, k in enumerate(doc.categories):
        add("category", categories, Category(k.id, k.name, k.kind, k.lead_department,
                                             tuple(k.cooperating)), f"categories[{i}].id")
        for field, dep in [("lead_department", k.lead_department),
                           *((f"cooperating[{j}]", c) for j, c in enumerate(k.cooperating))]:
            if dep not in departments:
                raise fail(f"categories[{i}].{field}", f"no department with id {dep!r}")
        if len({k.lead_department, *k.cooperating}) != 1 + len(k.cooperating):
            raise fail(f"categories[{i}].cooperating", "a department is named twice (lead or cooperating)")
    rules: dict[tuple[str, str], str] = {}
    for i, r in enumerate(doc.sla):
        rp = f"sla[{i}]"
        for field, key, table in (("category", r.category, categories), ("priority", r.priority, priorities)):
            if key != "*" and key not in table:
                raise fail(f"{rp}.{field}", f"no {field} with id {key!r} (use an id or '*')")
        earlier = rules.setdefault((r.category, r.priority), rp)
        if earlier != rp:
            raise fail(rp, f"a second rule for ({r.category!r}, {r.priority!r}); the first is {earlier}")
        if not r.accept_minutes <= r.dispatch_minutes:
            raise fail(rp, "the centre accepts before it dispatches, so accept_minutes <= dispatch_minutes is "
                           f"required (got {r.accept_minutes}, {r.dispatch_minutes})")
        if not r.ack_minutes <= r.handle_minutes <= r.feedback_minutes:
            raise fail(rp, "deadlines count from the dispatch, so ack_minutes <= handle_minutes"
                           f" <= feedback_minutes is required (got {r.ack_minutes}, {r.handle_minutes},"
                           f" {r.feedback_minutes})")
    if ("*", "*") not in rules:
        raise fail("sla", "no default rule: add one with category: '*' and priority: '*'")
    boundaries: dict[str, dict[str, Any]] = {}
    if doc.boundaries is not None:
        # the stored copy's shapes were checked and made WGS-84 when it was stored: taken as they are
        kept = isinstance(doc.boundaries, SimpleNamespace) and doc.boundaries.crs == "WGS84"
        for grid_id, geometry in doc.boundaries.grids.items():
            where = f"boundaries.grids.{grid_id}"
            if grid_id not in grids:
                raise fail(where, f"no grid with id {grid_id!r}")
            if kept and isinstance(geometry, dict):
                boundaries[grid_id] = geometry
                continue
            try:
                boundaries[grid_id] = check_geometry(geometry, doc.boundaries.crs)
            except ValueError as exc:
                raise fail(where, str(exc)) from None
    return Reference(
        sample=doc.sample, timezone=doc.timezone, working_hours=tuple(doc.working_hours),
        calendar_overrides=overrides, districts=districts, streets=streets, communities=communities,
        grids=grids, departments=departments, categories=categories, priorities=priorities,
        sla_rules=tuple(SlaRule(**(vars(r) if isinstance(r, SimpleNamespace) else r.model_dump())) for r in doc.sla), boundaries=boundaries,
        boundaries_sample=bool(doc.boundaries and doc.boundaries.sample),
        calendar_years=frozenset(doc.calendar_years))


# --- limits: a reference file is refused, in seconds and with bounded memory, when it is larger
# than any real city needs (the refusal names the limit it hit) ---------------------------------
MAX_FILE_BYTES = 16 * 1024 * 1024  # an honest city file with 100,000 named grids is about 8 MB
MAX_DEPTH = 24  # nesting levels (the schema itself needs 9)
MAX_ALIASES = 200  # YAML alias uses (*name)
MAX_NODES = 2_000_000  # values after aliases are expanded
MAX_GRIDS = 100_000  # grids in all (Beijing has about 30,000 street grids)
MAX_GRID_COUNT = 10_000  # one community's grid_count
MAX_MINUTES = 366 * 24 * 60  # an SLA deadline of more than a year is a typo


def _limit(name: str, what: str, path: str = "") -> ReferenceDataError:
    error = ReferenceDataError(name, path, f"{what} (limit: {_LIMIT_WORDS[what.split()[0]]})")
    error.limit = what.split()[0]
    return error


_LIMIT_WORDS = {
    "size": f"{MAX_FILE_BYTES // (1024 * 1024)} MiB", "depth": f"{MAX_DEPTH} levels of nesting",
    "aliases": f"{MAX_ALIASES} alias uses", "nodes": f"{MAX_NODES:,} values once aliases are expanded",
    "grids": f"{MAX_GRIDS:,} grids in all",
}


def _bracket_depth(text: str) -> int:
    """How deep ``[`` / ``{`` nest outside quoted strings: checked before any parser recurses."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _measure(root: Any, name: str) -> None:
    """Depth, alias uses and expanded size of a composed YAML node graph (aliases are shared
    nodes), without expanding it: a 1 KB file of nested aliases can stand for millions of values."""
    from yaml.nodes import CollectionNode, MappingNode

    def children(node: Any) -> list[Any]:
        if isinstance(node, MappingNode):
            return [x for pair in node.value for x in pair]
        return list(node.value) if isinstance(node, CollectionNode) else []

    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    refs: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if depth[key] > MAX_DEPTH:
                raise _limit(name, "depth exceeded: the file nests too deeply")
            if size[key] > MAX_NODES:
                raise _limit(name, "nodes exceeded: aliases expand to too many values")
            continue
        if key in size:
            continue
        if key in on_path:
            raise ReferenceDataError(name, "", "an alias refers to a value that contains it")
        on_path.add(key)
        stack.append((node, True))
        for kid in children(node):
            refs[id(kid)] = refs.get(id(kid), 0) + 1
            if refs[id(kid)] > 1 and sum(r - 1 for r in refs.values()) > MAX_ALIASES:
                raise _limit(name, "aliases exceeded: too many alias uses")
            stack.append((kid, False))


def _yaml_loader() -> type:
    import yaml  # here: a process that reads its reference data from the database never parses YAML

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C parser when installed

    class Loader(base):  # type: ignore[valid-type,misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if getattr(key_node, "tag", "") == "tag:yaml.org,2002:merge":
                    continue
                key = key_node.value if isinstance(key_node.value, str) else None
                if key is not None:
                    if key in seen:
                        mark = key_node.start_mark
                        raise ReferenceDataError(self.name, f"line {mark.line + 1}, column {mark.column + 1}",
                                                 f"the key {key!r} appears twice in one mapping")
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def _parse_yaml(text: str, name: str) -> Any:
    loader = _yaml_loader()(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, name)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _parse_json(text: str, name: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ReferenceDataError(name, "", f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def load_reference(path: str | Path | None = None, *, boundaries: bool = True) -> Reference:
    """Load and validate a reference file; ``None`` loads the bundled sample data (with its
    made-up sample grid boundaries, ``data/sample-boundaries.json``, unless ``boundaries=False``)."""
    name, data = read_reference_data(path, boundaries=boundaries)
    return reference_from_dict(data, source=name)


def read_reference_data(path: str | Path | None = None, *, boundaries: bool = True) -> tuple[str, Any]:
    """A reference file parsed but not yet validated: ``(its name, its data)``, within the
    same limits as ``load_reference`` (size, depth, syntax, not empty)."""
    extra: dict[str, Any] = {}
    if path is None:
        name, resource = _SAMPLE_NAME, resources.files("dispatch").joinpath("data/sample.yaml")
        text, suffix = resource.read_text(encoding="utf-8"), ".yaml"
        sample_boundaries = resources.files("dispatch").joinpath("data/sample-boundaries.json")
        if boundaries and sample_boundaries.is_file():
            extra["boundaries"] = json.loads(sample_boundaries.read_text(encoding="utf-8"))
    else:
        name, suffix = str(path), Path(path).suffix.lower()
        try:
            if Path(path).stat().st_size > MAX_FILE_BYTES:
                raise _limit(name, "size exceeded: the file is too large")
            with open(path, "rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise _limit(name, "size exceeded: the file is too large")
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise ReferenceDataError(name, "", "file not found") from None
        except UnicodeDecodeError:
            raise ReferenceDataError(name, "", "not UTF-8 text") from None
        except OSError as exc:
            raise ReferenceDataError(name, "", f"cannot read the file ({exc.strerror})") from None
    data = parse_reference_text(text, name, json_text=suffix == ".json")
    if extra and isinstance(data, dict):
        data = {**data, **extra}
    return name, data


def parse_reference_text(text: str, name: str, *, json_text: bool = False) -> Any:
    """Reference data given as text (YAML, or JSON with ``json_text``), parsed within the file
    limits (depth, syntax, not empty); ``name`` names it in errors."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise _limit(name, "size exceeded: the file is too large")
    if _bracket_depth(text) > MAX_DEPTH:
        raise _limit(name, "depth exceeded: the file nests too deeply")
    import yaml

    try:
        data = _parse_json(text, name) if json_text else _parse_yaml(text, name)
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(name, f"line {exc.lineno}, column {exc.colno}",
                                 f"JSON syntax error: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ReferenceDataError(name, where, f"YAML syntax error: {problem}") from None
    except RecursionError:
        raise _limit(name, "depth exceeded: the file nests too deeply") from None
    if data is None:
        raise ReferenceDataError(name, "", "the file is empty")
    return data
