"""Send quotas: how many messages a resource may send a minute, in all and to each country.

Messages are counted in per-second counters (``sms_send_counters``): a resource's counter of all
its messages (scope :data:`ALL_DESTINATIONS`) and one per destination country that has a quota.
A request is counted against the window's earlier seconds (read with the send's lookup), the
current second (locked until the commit, which serialises the counting of a resource's
concurrent requests in every API process) and the requests before it in the same batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.core.errors import AcsError
from gateway.core.settings import Settings
from gateway.sms.repository import counters as repository
from gateway.sms.repository.counters import CounterKey

# The counter scope of all of a resource's messages; the others are region codes.
ALL_DESTINATIONS = "*"
QUOTA_WINDOW_SECONDS = 60


def country_limits(settings: Settings, countries: Iterable[str]) -> dict[str, int]:
    """Each country's messages a minute per resource (0: no quota)."""
    return {country: settings.sms_country_quota(country) for country in countries}


def counted_scopes(settings: Settings, limits: dict[str, int]) -> list[str]:
    """The counters a request to these countries counts in: all of the resource's messages if
    it has a quota, then each country with a quota, in order."""
    scopes = [ALL_DESTINATIONS] if settings.sms_quota_per_resource_per_minute else []
    scopes += sorted(country for country, limit in limits.items() if limit)
    return scopes


def check_resource_quota(settings: Settings, counted: int, recipients: int) -> None:
    """Raise the 429 of a request of ``recipients`` messages that would take the resource past
    its quota, ``counted`` messages being in the window already."""
    limit = settings.sms_quota_per_resource_per_minute
    if limit and counted + recipients > limit:
        raise AcsError(
            429,
            "TooManyRequests",
            f"This resource may send {limit} messages a minute; try again later.",
            headers={"Retry-After": "60"},
        )


def country_room(limits: dict[str, int], counted: Callable[[str], int]) -> dict[str, int]:
    """How many more messages each country with a quota takes, ``counted(country)`` being in
    the window already."""
    return {country: max(0, limit - counted(country)) for country, limit in limits.items() if limit}


def country_quota_message(country: str, limit: int) -> str:
    """The error of a recipient refused by its country's quota."""
    return (
        f"Too many requests: at most {limit} messages a minute "
        f"to {country or 'this destination'} from this resource."
    )


def lock_current_counters(session: Session, second: int, keys: list[CounterKey]) -> dict[CounterKey, int]:
    """Lock the counters of ``second`` (a zero added) until the commit and read them.

    One statement, in (resource, scope) order: two transactions never wait for each other in a
    cycle, and a batch counts its own requests one after the other in memory."""
    return repository.upsert_counters(session, second, dict.fromkeys(keys, 0))


def add_counts(session: Session, second: int, added: dict[CounterKey, int]) -> None:
    """Count ``added[(resource, scope)]`` more messages in the counters of ``second``."""
    repository.upsert_counters(session, second, added)


def count_sent(session: Session, resource_id: str, country: str, now: datetime) -> None:
    """Count one message stored outside POST /sms (an automatic reply) towards the quotas."""
    added = {(resource_id, ALL_DESTINATIONS): 1, (resource_id, country): 1}
    repository.upsert_counters(session, int(now.timestamp()), added)


def opened_resources(current: dict[CounterKey, int]) -> list[str]:
    """The resources whose first counter of this second (their first scope) was just made,
    given the current second's counters as locked (0: new)."""
    first_scopes: dict[str, str] = {}
    for resource_id, scope in sorted(current):
        first_scopes.setdefault(resource_id, scope)
    return [resource_id for resource_id, scope in first_scopes.items() if current[(resource_id, scope)] == 0]


def forget_old_counters(session: Session, resource_id: str, second: int) -> None:
    """Delete a resource's counters that have left the window ending at ``second``."""
    repository.delete_counters_up_to(session, resource_id, second - QUOTA_WINDOW_SECONDS)
