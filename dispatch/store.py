"""The read-model database: one SQLAlchemy engine per process, and the table
that keeps the reference data every process of a deployment shares."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, Engine, Integer, MetaData, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dispatch.config import Database

__all__ = ["Base", "ReferenceRow", "create_read_engine", "load_stored_reference", "store_reference"]


class Base(DeclarativeBase):
    metadata = MetaData()


class ReferenceRow(Base):
    __tablename__ = "reference_data"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    body: Mapped[Any] = mapped_column(JSON)


def create_read_engine(db: Database) -> Engine:
    if db.is_sqlite:
        engine = create_engine(db.url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(db.url, pool_pre_ping=True, json_serializer=lambda o: json.dumps(o, ensure_ascii=False))


def load_stored_reference(engine: Engine) -> tuple[str, dict[str, Any]] | None:
    ReferenceRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(select(ReferenceRow.source, ReferenceRow.body).where(ReferenceRow.id == 1)).first()
    return (row[0], row[1]) if row else None


def store_reference(engine: Engine, source: str, body: dict[str, Any]) -> None:
    ReferenceRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(ReferenceRow.__table__.delete())  # type: ignore[attr-defined]
        conn.execute(ReferenceRow.__table__.insert().values(id=1, source=source, body=body))  # type: ignore[attr-defined]
