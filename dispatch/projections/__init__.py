"""Read models: fact tables fed by ticket events, and the figures computed from them.

    create_tables(engine)                      the read-model tables (idempotent)
    catch_up(runtime, until=None)              embedded mode: apply new store notifications
    apply_records(engine, records, source=, position=)
                                               apply a batch + store the source position atomically
    stored_position(engine, source)            where a source's projection stands
    list_tickets(engine, ...)                  the ticket list (``dispatch tickets``)
    community_dashboard / street_dashboard     dashboards (see docs/figures.md)
    sla_statistics                             SLA statistics and department scorecards
    timeline(runtime, ticket_id)               every event of one ticket, with the SLA clock
"""

from dispatch.projections.apply import apply_records, stored_position
from dispatch.projections.dashboard import community_dashboard, street_dashboard
from dispatch.projections.figures import Settings
from dispatch.projections.records import EventRecord
from dispatch.projections.runner import STORE_SOURCE, catch_up
from dispatch.projections.sla_stats import sla_statistics
from dispatch.projections.tables import create_tables
from dispatch.projections.tickets import list_tickets
from dispatch.projections.timeline import timeline

__all__ = [
    "STORE_SOURCE",
    "EventRecord",
    "Settings",
    "apply_records",
    "catch_up",
    "community_dashboard",
    "create_tables",
    "list_tickets",
    "sla_statistics",
    "stored_position",
    "street_dashboard",
    "timeline",
]
