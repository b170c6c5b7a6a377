"""Read models: fact tables fed by ticket events, and the figures computed from them.

    create_tables(engine)                      the read-model tables (idempotent)
    catch_up(runtime, until=None)              embedded mode: apply new store notifications
    for_reading(runtime)                       catch up before a read, unless a projector of the process does
    apply_records(engine, records, source=, position=)
                                               apply a batch + store the source position atomically
    stored_position(engine, source)            where a source's projection stands
    list_tickets(engine, ...)                  the ticket list (``dispatch tickets``)
    community_dashboard / street_dashboard     dashboards (see docs/figures.md)
    sla_statistics                             SLA statistics and department scorecards
    timeline.timeline(runtime, ticket_id)      every event of one ticket, with the SLA clock
"""

from importlib import import_module
from typing import Any

# each name from its module, imported when first asked for: a command that shows one ticket
# does not pay for the dashboards' modules
_HOMES = {
    "apply_records": "apply_events", "stored_position": "tables", "community_dashboard": "dashboard",
    "street_dashboard": "dashboard", "Settings": "figures", "EventRecord": "records", "STORE_SOURCE": "poller",
    "catch_up": "poller", "for_reading": "poller", "sla_statistics": "sla_stats", "create_tables": "tables", "list_tickets": "listing",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dispatch.projections' has no attribute {name!r}")
    value = getattr(import_module(f"dispatch.projections.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "STORE_SOURCE",
    "EventRecord",
    "Settings",
    "apply_records",
    "catch_up",
    "community_dashboard",
    "for_reading",
    "create_tables",
    "list_tickets",
    "sla_statistics",
    "stored_position",
    "street_dashboard",
]
