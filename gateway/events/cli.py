"""``trunkline events ...``: subscriptions, dead letters, replay, test events.

The events commands work on the database directly, like ``trunkline resources``; deliveries and
handshakes they start are carried out by the running workers (:mod:`gateway.events.worker`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from gateway.core.cli_database import command_session
from gateway.core.cli_output import console, note, print_table
from gateway.core.cli_output import fail as _fail
from gateway.core.cli_output import print_json as _print_json
from gateway.core.settings import get_settings

T = TypeVar("T")

events_app = typer.Typer(help="Event subscriptions and webhook deliveries.", no_args_is_help=True)
SCHEMAS = {"eventgrid": "EventGridSchema", "cloudevents": "CloudEventSchemaV1_0"}
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(work: Callable[[Any], T]) -> T:
    with command_session() as session:
        return work(session)


def _dump(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


def _event_type(name: str) -> str:
    name = name.strip()
    return name if "." in name else f"Microsoft.Communication.{name}"


# The batching options of ``subscribe`` and ``update``.
MaxEventsPerBatch = Annotated[
    int | None, typer.Option(help="Events per HTTP delivery (1-5000; default 1: no batching).")
]
PreferredBatchSizeKb = Annotated[
    int | None, typer.Option(help="Preferred batch size in KiB (1-1024; default 64).")
]


@events_app.command("subscribe")
def subscribe(
    resource: Annotated[str, typer.Option(help="Resource name or id.")],
    endpoint: Annotated[str, typer.Option(help="Webhook URL (https).")],
    types: Annotated[
        str, typer.Option(help="Comma-separated event types, e.g. Microsoft.Communication.SMSReceived.")
    ],
    schema: Annotated[str, typer.Option(help="eventgrid or cloudevents.")] = "eventgrid",
    subject_begins_with: Annotated[str | None, typer.Option(help="Subject filter prefix.")] = None,
    subject_ends_with: Annotated[str | None, typer.Option(help="Subject filter suffix.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Max delivery attempts (1-30).")] = None,
    ttl_minutes: Annotated[int | None, typer.Option(help="Event time to live (1-1440 minutes).")] = None,
    max_events_per_batch: MaxEventsPerBatch = None,
    preferred_batch_size_kb: PreferredBatchSizeKb = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a subscription; prints it with its id and signing secret."""
    from gateway.events import subscriptions
    from gateway.events.builder import DeliverySchema
    from gateway.events.runtime import limits_from_settings, policy_from_settings
    from gateway.events.schemas import Subscription
    from gateway.resources.service import get_resource

    if schema not in SCHEMAS:
        raise _fail("--schema must be eventgrid or cloudevents", 2)
    settings = get_settings()
    spec = subscriptions.SubscriptionSpec(
        endpoint_url=endpoint,
        event_types=[_event_type(t) for t in types.split(",") if t.strip()],
        delivery_schema=DeliverySchema(SCHEMAS[schema]),
        subject_begins_with=subject_begins_with,
        subject_ends_with=subject_ends_with,
        max_delivery_attempts=max_attempts,
        event_ttl_minutes=ttl_minutes,
        max_events_per_batch=max_events_per_batch,
        preferred_batch_size_kb=preferred_batch_size_kb,
    )
    data = _run(
        lambda s: _dump(
            Subscription.of(
                subscriptions.create_subscription(
                    s,
                    get_resource(s, resource).id,
                    spec,
                    policy_from_settings(settings),
                    limits_from_settings(settings),
                )
            )
        )
    )
    hint = endpoint_hint(endpoint, data["id"])
    if hint:
        note(hint)
    if as_json:
        _print_json(data)
        return
    console.print(f"subscription [bold]{data['id']}[/bold] ({data['status']})")
    console.print(f"secret: {data['secret']}")


def endpoint_hint(endpoint: str, subscription_id: str) -> str | None:
    """What to do when the workers may refuse an endpoint this command allowed: it was allowed
    only by TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS, which the workers may not have."""
    from gateway.core.local_state import read_local_gateway
    from gateway.events.ssrf import (
        ALLOWED_NETWORKS_SETTING,
        DestinationRefused,
        Policy,
        check_destination,
        parse_networks,
    )

    try:
        check_destination(endpoint, Policy())
    except DestinationRefused as exc:
        if not exc.by_policy:
            return None
    else:
        return None  # a public https endpoint: every worker allows it
    command = f"trunkline events validate {subscription_id}"
    retry = f"the handshake is tried again when a worker starts, or run `{command}`"
    local = read_local_gateway()
    if local is not None and local.running:
        try:
            check_destination(endpoint, Policy(parse_networks(local.webhook_allowed_networks)))
        except DestinationRefused:
            networks = ",".join(get_settings().webhook_allowed_networks)
            return (
                f"the running gateway (`trunkline up`, pid {local.pid}) does not allow this endpoint: "
                f"restart it with {ALLOWED_NETWORKS_SETTING}={networks}; {retry}."
            )
        return None
    return (
        f"this endpoint is allowed only by {ALLOWED_NETWORKS_SETTING}: the workers (`trunkline worker`) need "
        f"it too, or the handshake waits (`trunkline events show {subscription_id}` says why); {retry}."
    )


@events_app.command("update")
def update(
    subscription_id: str,
    endpoint: Annotated[str | None, typer.Option(help="New webhook URL (validated again).")] = None,
    types: Annotated[str | None, typer.Option(help="Comma-separated event types.")] = None,
    schema: Annotated[str | None, typer.Option(help="eventgrid or cloudevents (validated again).")] = None,
    subject_begins_with: Annotated[str | None, typer.Option(help="Prefix filter; '' clears it.")] = None,
    subject_ends_with: Annotated[str | None, typer.Option(help="Suffix filter; '' clears it.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Max delivery attempts (1-30).")] = None,
    ttl_minutes: Annotated[int | None, typer.Option(help="Event time to live (1-1440 minutes).")] = None,
    max_events_per_batch: MaxEventsPerBatch = None,
    preferred_batch_size_kb: PreferredBatchSizeKb = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a subscription."""
    from gateway.events import subscriptions
    from gateway.events.builder import DeliverySchema
    from gateway.events.runtime import policy_from_settings
    from gateway.events.schemas import Subscription

    if schema is not None and schema not in SCHEMAS:
        raise _fail("--schema must be eventgrid or cloudevents", 2)
    change = subscriptions.SubscriptionUpdate(
        endpoint_url=endpoint,
        event_types=[_event_type(t) for t in types.split(",") if t.strip()] if types is not None else None,
        delivery_schema=DeliverySchema(SCHEMAS[schema]) if schema else None,
        subject_begins_with=subject_begins_with,
        subject_ends_with=subject_ends_with,
        max_delivery_attempts=max_attempts,
        event_ttl_minutes=ttl_minutes,
        max_events_per_batch=max_events_per_batch,
        preferred_batch_size_kb=preferred_batch_size_kb,
    )
    policy = policy_from_settings(get_settings())
    data = _run(
        lambda s: _dump(
            Subscription.of(subscriptions.update_subscription(s, subscription_id, change, policy))
        )
    )
    if as_json:
        _print_json(data)
    else:
        console.print(f"subscription [bold]{data['id']}[/bold] ({data['status']})")


@events_app.command("list")
def list_(
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List subscriptions."""
    from gateway.events import subscriptions
    from gateway.events.schemas import Subscription
    from gateway.resources.service import get_resource, list_resources

    def work(session: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
        scope = get_resource(session, resource).id if resource else None
        names = {r.id: r.name for r in list_resources(session)}
        return [_dump(Subscription.of(s)) for s in subscriptions.list_subscriptions(session, scope)], names

    rows, names = _run(work)
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("id", "resource", "endpoint", "types", "schema", "events/batch", "batch KiB", "status"),
        [
            (
                row["id"],
                names.get(row["resourceId"], row["resourceId"]),
                row["endpointUrl"],
                ",".join(t.rsplit(".", 1)[-1] for t in row["includedEventTypes"]),
                row["eventDeliverySchema"],
                str(row["maxEventsPerBatch"]),
                str(row["preferredBatchSizeInKilobytes"]),
                row["status"],
            )
            for row in rows
        ],
    )


@events_app.command("show")
def show(
    subscription_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (show always does).")] = False,
) -> None:
    """Print one subscription as JSON."""
    from gateway.events import subscriptions
    from gateway.events.schemas import Subscription

    _print_json(_run(lambda s: _dump(Subscription.of(subscriptions.get_subscription(s, subscription_id)))))


@events_app.command("delete")
def delete(subscription_id: str) -> None:
    """Delete a subscription (and its pending deliveries)."""
    from gateway.events import subscriptions

    _run(lambda s: subscriptions.delete_subscription(s, subscription_id))
    console.print(f"deleted {subscription_id}")


@events_app.command("test")
def send_test(
    subscription_id: str,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type to send.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver a sample event to this subscription through the normal pipeline."""
    from gateway.events import samples

    chosen = _event_type(event_type) if event_type else None
    event_id = _run(lambda s: samples.send_test_event(s, subscription_id, None, chosen))
    if as_json:
        _print_json({"eventId": event_id})
    else:
        console.print(f"test event {event_id} queued; see `trunkline events attempts {subscription_id}`")


@events_app.command("rotate-secret")
def rotate_secret(subscription_id: str, as_json: JsonFlag = False) -> None:
    """New signing secret; the previous one keeps signing during the overlap."""
    from gateway.events import subscriptions
    from gateway.events.runtime import limits_from_settings
    from gateway.events.schemas import Subscription

    limits = limits_from_settings(get_settings())
    data = _run(lambda s: _dump(Subscription.of(subscriptions.rotate_secret(s, subscription_id, limits))))
    if as_json:
        _print_json(data)
    else:
        console.print(f"secret: {data['secret']}")


@events_app.command("validate")
def validate(subscription_id: str) -> None:
    """Run the validation handshake again."""
    from gateway.events import subscriptions

    _run(lambda s: subscriptions.revalidate(s, subscription_id))
    console.print("validation handshake queued")


@events_app.command("deliveries")
def deliveries(
    subscription_id: str,
    status: Annotated[str | None, typer.Option(help="pending, delivered or deadLettered.")] = None,
    limit: int = 50,
    as_json: JsonFlag = False,
) -> None:
    """Deliveries of a subscription; --status deadLettered lists the dead-letter store."""
    from gateway.events import history
    from gateway.events.schemas import DeliveryView

    rows = _run(
        lambda s: [
            _dump(DeliveryView.of(d, e))
            for d, e in history.list_deliveries(s, subscription_id, status=status, limit=limit)
        ]
    )
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("event", "type", "status", "attempts", "reason", "last status"),
        [
            (
                row["eventId"],
                row["eventType"].rsplit(".", 1)[-1],
                row["status"],
                row["attempts"],
                row["deadLetterReason"] or "",
                row["lastStatusCode"] or row["lastError"] or "",
            )
            for row in rows
        ],
    )


@events_app.command("attempts")
def attempts(
    subscription_id: str,
    event: Annotated[str | None, typer.Option(help="Only this event id.")] = None,
    limit: int = 50,
    as_json: JsonFlag = False,
) -> None:
    """The attempt log of a subscription (newest first)."""
    from gateway.events import history
    from gateway.events.schemas import AttemptView

    rows = _run(
        lambda s: [
            _dump(AttemptView.of(a))
            for a in history.list_attempts(s, subscription_id, event_id=event, limit=limit)
        ]
    )
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("time", "event", "#", "status", "ms", "outcome", "error"),
        [
            (
                row["time"],
                row["eventId"] or "(validation)",
                row["number"],
                row["statusCode"] or "",
                row["latencyMs"],
                row["outcome"],
                row["error"] or "",
            )
            for row in rows
        ],
    )


@events_app.command("replay")
def replay(
    subscription_id: str,
    event: Annotated[
        list[str] | None, typer.Option(help="Event id to replay (repeatable); default all.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send dead-lettered events of a subscription again."""
    from gateway.events import history

    ids = _run(lambda s: history.replay(s, subscription_id, event or None))
    if as_json:
        _print_json({"replayedEventIds": ids})
    else:
        console.print(f"replaying {len(ids)} event(s)")
