"""SQL of POST /sms's send path: the batch lookup (senders, opt-outs and the quota counters'
earlier seconds in one round trip), the repeatability ids, and the insert of queued messages.

The statements are built once, with bind parameters (see ``repository.counters``); each list is
one array parameter on PostgreSQL (``one_of``), so a statement's SQL stays the same whatever
the batch's size. tests/gateway/sms/repository/test_plans.py checks their plans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Integer,
    String,
    Table,
    bindparam,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from gateway.core.bulk import insert_rows
from gateway.core.db import one_of
from gateway.numbers.models import PurchasedNumber
from gateway.sms.models import SmsMessage, SmsOptOut
from gateway.sms.repository.counters import CounterKey, counters

_messages = cast(Table, SmsMessage.__table__)
_numbers = cast(Table, PurchasedNumber.__table__)
_optouts = cast(Table, SmsOptOut.__table__)


def lookup_statement(*, with_quotas: bool, postgres: bool) -> CompoundSelect[*tuple[Any, ...]]:
    """The senders, the opt-outs and the quota counters' earlier seconds in one round trip.

    Each branch of the UNION ALL tags its rows with what they are; ``a``, ``b`` and ``c`` are
    (resource, sender, capability), (sender, recipient, '') or (resource, scope, ''), and
    ``earlier`` a count (0 where it means nothing)."""
    zero = literal(0, Integer)
    empty = literal("", String)
    branches = [
        select(
            literal("sender").label("kind"),
            _numbers.c.resource_id,
            _numbers.c.phone_number,
            _numbers.c.sms,
            zero,
        ).where(one_of(_numbers.c.phone_number, "senders", postgres=postgres)),
        select(literal("opted_out"), _optouts.c.from_number, _optouts.c.to_number, empty, zero).where(
            one_of(_optouts.c.from_number, "senders", postgres=postgres),
            one_of(_optouts.c.to_number, "recipients", postgres=postgres),
        ),
    ]
    if with_quotas:
        branches.append(
            select(
                literal("quota"),
                counters.c.resource_id,
                counters.c.scope,
                empty,
                func.sum(counters.c.sent),
            )
            .where(
                one_of(counters.c.resource_id, "resources", postgres=postgres),
                one_of(counters.c.scope, "scopes", postgres=postgres),
                counters.c.second > bindparam("window_start", type_=BigInteger),
                counters.c.second < bindparam("second", type_=BigInteger),
            )
            .group_by(counters.c.resource_id, counters.c.scope)
        )
    return union_all(*branches)


# by (with quotas, on PostgreSQL)
LOOKUPS = {
    (quotas, postgres): lookup_statement(with_quotas=quotas, postgres=postgres)
    for quotas in (False, True)
    for postgres in (False, True)
}
# by on PostgreSQL
FIND_REPEATED = {
    postgres: select(
        _messages.c.id,
        _messages.c.to_number,
        _messages.c.resource_id,
        _messages.c.repeatability_request_id,
        _messages.c.created_at,
    ).where(
        one_of(_messages.c.resource_id, "resources", postgres=postgres),
        one_of(_messages.c.repeatability_request_id, "request_ids", postgres=postgres),
    )
    for postgres in (False, True)
}
_FORGET_REPEATABILITY_IDS = (
    update(_messages)
    .where(_messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(repeatability_request_id=None)
)


@dataclass
class Lookup:
    """What the batch lookup found: each (resource, sender)'s SMS capability (absent: not the
    resource's number), the (sender, recipient) pairs opted out, and each counter's messages in
    the earlier seconds of the quota window."""

    capabilities: dict[tuple[str, str], str | None] = field(default_factory=dict)
    opted_out: set[tuple[str, str]] = field(default_factory=set)
    earlier: dict[CounterKey, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CounterWindow:
    """The counters the lookup sums: these resources' and scopes', after ``window_start`` and
    before ``second`` (the current second, locked and read apart)."""

    resources: list[str]
    scopes: list[str]
    window_start: int
    second: int


def read_senders_optouts_counters(
    session: Session, senders: list[str], recipients: list[str], window: CounterWindow | None
) -> Lookup:
    """One round trip: the senders, the opt-outs of (sender, recipient) pairs, and with a
    ``window`` its counters."""
    parameters: dict[str, Any] = {"senders": senders, "recipients": recipients}
    if window is not None:
        parameters |= {
            "resources": window.resources,
            "scopes": window.scopes,
            "second": window.second,
            "window_start": window.window_start,
        }
    connection = session.connection()
    statement = LOOKUPS[(window is not None, connection.dialect.name == "postgresql")]
    found = Lookup()
    for kind, a, b, c, earlier in connection.execute(statement, parameters):
        if kind == "sender":
            found.capabilities[(a, b)] = c
        elif kind == "opted_out":
            found.opted_out.add((a, b))
        else:
            found.earlier[(a, b)] = int(earlier or 0)
    return found


class RepeatableMessage(NamedTuple):
    """A stored message that carries a repeatability id."""

    id: str
    to_number: str
    resource_id: str
    repeatability_request_id: str
    created_at: datetime


def find_repeatable(
    session: Session, resources: list[str], request_ids: list[str]
) -> Iterator[RepeatableMessage]:
    """The messages of these resources carrying one of these repeatability ids (a superset of
    the (resource, id) pairs asked: the caller filters)."""
    connection = session.connection()
    statement = FIND_REPEATED[connection.dialect.name == "postgresql"]
    for row in connection.execute(statement, {"resources": resources, "request_ids": request_ids}):
        yield RepeatableMessage(*row)


def forget_repeatability_ids(session: Session, message_ids: list[str]) -> None:
    """Clear these messages' repeatability ids (the rows keep their messages)."""
    session.connection().execute(_FORGET_REPEATABILITY_IDS, {"ids": message_ids})


def insert_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``sms_messages`` rows, in one statement (gateway.core.bulk: one SQL text whatever
    the batch's size)."""
    insert_rows(session, _messages, rows)
