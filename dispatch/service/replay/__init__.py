"""Analysts' replay: rebuild the projections from the event store or Kafka into a
fresh database (optionally as of a business instant), verify them against the live
ones, and export tickets, events and SLA rows.

    StoreSource(app) / KafkaSource(bootstrap, prefix)   pages of ticket events
    rebuild(source, engine, until=None)                 every projection, page by page
    open_target(url, reference, source=) / scratch()    the database a rebuild writes
    compare(live_engine, rebuilt_engine)                table-by-table verification
    export_rows(kind, …) / write_csv / write_parquet    analysts' files (docs/export-columns.md)
"""

from dispatch.service.replay.export import EXPORTS, export_rows, write_csv, write_parquet
from dispatch.service.replay.rebuild import RebuildResult, rebuild
from dispatch.service.replay.sources import PAGE_SIZE, KafkaSource, StoreSource
from dispatch.service.replay.target import Target, default_target, open_target, scratch
from dispatch.service.replay.verify import Comparison, compare, compared_tables

__all__ = [
    "EXPORTS",
    "PAGE_SIZE",
    "Comparison",
    "KafkaSource",
    "RebuildResult",
    "StoreSource",
    "Target",
    "compare",
    "compared_tables",
    "default_target",
    "export_rows",
    "open_target",
    "rebuild",
    "scratch",
    "write_csv",
    "write_parquet",
]
