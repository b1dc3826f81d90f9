"""SQL of the operator's SMPP connections (``smpp_connections``), routes (``smpp_routes``) and
the status the SMPP processes publish of their binds (``smpp_bind_status``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.sms.models import SmppBindStatus, SmppConnection, SmppRoute


def connection_named(session: Session, name: str) -> SmppConnection | None:
    return session.scalar(select(SmppConnection).where(SmppConnection.name == name))


def all_connections(session: Session) -> list[SmppConnection]:
    """Every connection, by name."""
    return list(session.scalars(select(SmppConnection).order_by(SmppConnection.name)))


def add(session: Session, row: SmppConnection | SmppRoute) -> None:
    """Store a new connection or route now (its defaults and id filled in)."""
    session.add(row)
    session.flush()


def delete(session: Session, row: SmppConnection) -> None:
    session.delete(row)


def routes_of_prefix(session: Session, prefix: str) -> list[SmppRoute]:
    return list(session.scalars(select(SmppRoute).where(SmppRoute.prefix == prefix)))


def route_of(session: Session, prefix: str, connection_id: str) -> SmppRoute | None:
    """The route of ``prefix`` through this connection, if there is one."""
    return session.scalar(
        select(SmppRoute).where(SmppRoute.prefix == prefix, SmppRoute.connection_id == connection_id)
    )


def routes_with_connection_names(session: Session) -> list[tuple[SmppRoute, str]]:
    """Every route and its connection's name, by prefix then priority."""
    rows = session.execute(
        select(SmppRoute, SmppConnection.name)
        .join(SmppConnection, SmppConnection.id == SmppRoute.connection_id)
        .order_by(SmppRoute.prefix, SmppRoute.priority)
    ).all()
    return [(route, name) for route, name in rows]


def publish_bind_status(session: Session, process: str, rows: Sequence[SmppBindStatus]) -> None:
    """Replace what ``process`` published before with ``rows`` (its binds now)."""
    session.execute(delete_rows(SmppBindStatus).where(SmppBindStatus.process == process))
    session.add_all(rows)


def forget_process(session: Session, process: str) -> None:
    """A process stopping: its binds are gone with it."""
    session.execute(delete_rows(SmppBindStatus).where(SmppBindStatus.process == process))


def bind_statuses(session: Session) -> list[SmppBindStatus]:
    """Every published bind status, by connection then process."""
    return list(
        session.scalars(select(SmppBindStatus).order_by(SmppBindStatus.connection_id, SmppBindStatus.process))
    )
