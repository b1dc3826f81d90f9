"""Event-subscription routes: operator admin API, the tenant's own (HMAC) API, and the public
``validationUrl`` endpoint. Thin: the rules are in :mod:`gateway.events.subscriptions`,
:mod:`~gateway.events.validation`, :mod:`~gateway.events.history` and :mod:`~gateway.events.samples`."""

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant, require_operator
from gateway.core.db import Database
from gateway.events import history, samples, subscriptions, validation
from gateway.events.runtime import limits_from_settings, policy_from_settings
from gateway.events.schemas import (
    AdminSubscriptionCreate,
    AttemptList,
    AttemptView,
    DeliveryList,
    DeliveryView,
    ReplayRequest,
    ReplayResult,
    Subscription,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionPatch,
    TestEventAccepted,
    TestEventRequest,
)
from gateway.resources.service import get_resource

T = TypeVar("T")

admin_router = APIRouter(
    prefix="/admin/eventSubscriptions",
    tags=["admin: event subscriptions"],
    dependencies=[Depends(require_operator)],
)
tenant_router = APIRouter(prefix="/eventSubscriptions", tags=["event subscriptions"])
public_router = APIRouter(tags=["event subscriptions"])

StatusFilter = Annotated[str | None, Query(alias="status", pattern="^(pending|delivered|deadLettered)$")]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _in_session(database: Database, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with database.session() as session:
            return work(session)

    return await run_in_threadpool(run)


# Public validationUrl (registered before the tenant routes so that ":validate" is not an id).


@public_router.get("/eventSubscriptions/{subscription_id}:validate")
async def validate_by_url(subscription_id: str, code: str, database: AppDatabase) -> JSONResponse:
    def work(session: Session) -> str:
        return validation.validate_by_url(session, subscription_id, code).status

    status = await _in_session(database, work)
    return JSONResponse({"status": status})


# Shared handlers, scoped by resource (None: the operator sees everything) ---------------------


async def _create(
    database: AppDatabase, settings: AppSettings, resource_id: str | None, body: SubscriptionCreate
) -> Subscription:
    def work(session: Session) -> Subscription:
        owner = resource_id
        if owner is None:
            assert isinstance(body, AdminSubscriptionCreate)
            owner = get_resource(session, body.resource).id
        created = subscriptions.create_subscription(
            session, owner, body.spec(), policy_from_settings(settings), limits_from_settings(settings)
        )
        return Subscription.of(created)

    return await _in_session(database, work)


def _routes(router: APIRouter, scoped: bool) -> None:
    def owner(tenant: object) -> str | None:
        return getattr(tenant, "resource_id", None) if scoped else None

    from gateway.core.auth import authenticated_tenant

    async def _no_tenant() -> None:
        return None

    Caller = Annotated[object, Depends(authenticated_tenant if scoped else _no_tenant)]

    @router.get("", response_model=SubscriptionList, response_model_by_alias=True)
    async def list_subscriptions(
        database: AppDatabase, caller: Caller, resource: Annotated[str | None, Query()] = None
    ) -> SubscriptionList:
        def work(session: Session) -> SubscriptionList:
            scope = owner(caller)
            if scope is None and resource is not None:
                scope = get_resource(session, resource).id
            return SubscriptionList(
                value=[Subscription.of(s) for s in subscriptions.list_subscriptions(session, scope)]
            )

        return await _in_session(database, work)

    @router.get("/{subscription_id}", response_model=Subscription, response_model_by_alias=True)
    async def get_subscription(subscription_id: str, database: AppDatabase, caller: Caller) -> Subscription:
        return await _in_session(
            database,
            lambda s: Subscription.of(subscriptions.get_subscription(s, subscription_id, owner(caller))),
        )

    @router.patch("/{subscription_id}", response_model=Subscription, response_model_by_alias=True)
    async def update_subscription(
        subscription_id: str,
        body: SubscriptionPatch,
        database: AppDatabase,
        settings: AppSettings,
        caller: Caller,
    ) -> Subscription:
        policy = policy_from_settings(settings)
        return await _in_session(
            database,
            lambda s: Subscription.of(
                subscriptions.update_subscription(s, subscription_id, body.change(), policy, owner(caller))
            ),
        )

    @router.delete("/{subscription_id}", status_code=204)
    async def delete_subscription(subscription_id: str, database: AppDatabase, caller: Caller) -> Response:
        await _in_session(
            database, lambda s: subscriptions.delete_subscription(s, subscription_id, owner(caller))
        )
        return Response(status_code=204)

    @router.post("/{subscription_id}:rotateSecret", response_model=Subscription, response_model_by_alias=True)
    async def rotate_secret(
        subscription_id: str, database: AppDatabase, settings: AppSettings, caller: Caller
    ) -> Subscription:
        limits = limits_from_settings(settings)
        return await _in_session(
            database,
            lambda s: Subscription.of(subscriptions.rotate_secret(s, subscription_id, limits, owner(caller))),
        )

    @router.post("/{subscription_id}:validate", response_model=Subscription, response_model_by_alias=True)
    async def revalidate(subscription_id: str, database: AppDatabase, caller: Caller) -> Subscription:
        return await _in_session(
            database, lambda s: Subscription.of(subscriptions.revalidate(s, subscription_id, owner(caller)))
        )

    @router.post(
        "/{subscription_id}:test",
        status_code=202,
        response_model=TestEventAccepted,
        response_model_by_alias=True,
    )
    async def send_test_event(
        subscription_id: str, database: AppDatabase, caller: Caller, body: TestEventRequest | None = None
    ) -> TestEventAccepted:
        event_type = body.event_type if body else None
        return await _in_session(
            database,
            lambda s: TestEventAccepted(
                event_id=samples.send_test_event(s, subscription_id, owner(caller), event_type)
            ),
        )

    @router.get("/{subscription_id}/deliveries", response_model=DeliveryList, response_model_by_alias=True)
    async def list_deliveries(
        subscription_id: str,
        database: AppDatabase,
        caller: Caller,
        status: StatusFilter = None,
        limit: Limit = 100,
    ) -> DeliveryList:
        def work(session: Session) -> DeliveryList:
            subscription = subscriptions.get_subscription(session, subscription_id, owner(caller))
            rows = history.list_deliveries(session, subscription.id, status=status, limit=limit)
            return DeliveryList(value=[DeliveryView.of(d, e) for d, e in rows])

        return await _in_session(database, work)

    @router.get("/{subscription_id}/attempts", response_model=AttemptList, response_model_by_alias=True)
    async def list_attempts(
        subscription_id: str,
        database: AppDatabase,
        caller: Caller,
        event_id: Annotated[str | None, Query(alias="eventId")] = None,
        limit: Limit = 100,
    ) -> AttemptList:
        def work(session: Session) -> AttemptList:
            subscription = subscriptions.get_subscription(session, subscription_id, owner(caller))
            found = history.list_attempts(session, subscription.id, event_id=event_id, limit=limit)
            return AttemptList(value=[AttemptView.of(a) for a in found])

        return await _in_session(database, work)

    @router.post("/{subscription_id}:replay", response_model=ReplayResult, response_model_by_alias=True)
    async def replay(
        subscription_id: str, database: AppDatabase, caller: Caller, body: ReplayRequest | None = None
    ) -> ReplayResult:
        def work(session: Session) -> ReplayResult:
            subscription = subscriptions.get_subscription(session, subscription_id, owner(caller))
            ids = history.replay(session, subscription.id, body.event_ids if body else None)
            return ReplayResult(replayed_event_ids=ids)

        return await _in_session(database, work)


@admin_router.post("", status_code=201, response_model=Subscription, response_model_by_alias=True)
async def admin_create(
    body: AdminSubscriptionCreate, database: AppDatabase, settings: AppSettings
) -> Subscription:
    return await _create(database, settings, None, body)


@tenant_router.post("", status_code=201, response_model=Subscription, response_model_by_alias=True)
async def tenant_create(
    body: SubscriptionCreate, database: AppDatabase, settings: AppSettings, tenant: AuthenticatedTenant
) -> Subscription:
    return await _create(database, settings, tenant.resource_id, body)


_routes(admin_router, scoped=False)
_routes(tenant_router, scoped=True)
