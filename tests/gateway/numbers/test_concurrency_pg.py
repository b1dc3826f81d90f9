"""Holds and purchases are race-free on the real PostgreSQL: 50 buyers in separate processes,
separate resources, the same area code, fewer numbers than they ask for."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.numbers import importer, inventory, operations, purchases, reservations, searches
from gateway.numbers.models import InventoryNumber, NumberOperation, PurchasedNumber
from gateway.numbers.sample import US_AREAS, sample_rows
from gateway.resources import service as resources
from tests.support.postgres import empty_all_tables

pytestmark = pytest.mark.postgres

BUYERS = 50
PER_BUYER = 2
STOCK = 70  # less than BUYERS * PER_BUYER: buyers compete for the last numbers
TIMEOUT = 120


def _buyer(url: str, resource_id: str, barrier: Any, results: Any) -> None:
    database = Database(url, pool_size=1, max_overflow=0)
    settings = Settings(numbers_search_hold_minutes=15)
    barrier.wait(timeout=60)
    request = searches.SearchRequest(
        "geographic", "application", "inbound", "inbound+outbound", "425", PER_BUYER
    )
    with database.session() as session:
        search, operation = searches.start_search(session, resource_id, "US", request, settings)
        search_id, search_operation = search.id, operation.id
    operations.execute(database, settings, search_operation)
    with database.session() as session:
        op = session.get(NumberOperation, search_operation)
        assert op is not None
        if op.status != "succeeded":
            results.put((resource_id, [], op.error_code))
            database.dispose()
            return
        held = list(searches.get_search(session, resource_id, search_id).phone_numbers)
        purchase = purchases.start_purchase(session, resource_id, search_id, False, utcnow())
        purchase_id = purchase.id
    operations.execute(database, settings, purchase_id)
    with database.session() as session:
        op = session.get(NumberOperation, purchase_id)
        assert op is not None
        results.put((resource_id, held, op.status))
    database.dispose()


def _reserver(url: str, resource_id: str, wanted: list[str], barrier: Any, results: Any) -> None:
    import uuid

    database = Database(url, pool_size=1, max_overflow=0)
    settings = Settings()
    barrier.wait(timeout=60)
    with database.session() as session:
        body, status = reservations.upsert_reservation(
            session,
            resource_id,
            str(uuid.uuid4()),
            {"phoneNumbers": {n.lstrip("+"): {} for n in wanted}},
            settings,
            utcnow(),
        )
    got = [k for k, v in body["phoneNumbers"].items() if v["status"] == "reserved"]
    results.put((resource_id, got, status))
    database.dispose()


def _run(target: Any, args_for: list[tuple[Any, ...]]) -> list[Any]:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(args_for))
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args, barrier, results)) for args in args_for]
    for process in processes:
        process.start()
    collected = [results.get(timeout=TIMEOUT) for _ in processes]
    for process in processes:
        process.join(timeout=TIMEOUT)
        assert process.exitcode == 0
    return collected


@pytest.fixture
def pg(postgres_url: str) -> Any:
    database = Database(postgres_url)
    with database.session() as session:
        inventory.create_carrier(session, "acme", "both")
    rows = list(sample_rows(STOCK, US_AREAS[:1], carrier="acme")) + list(
        sample_rows(10, US_AREAS[1:2], carrier="acme")
    )
    assert importer.import_records(database, enumerate(rows, start=2)).accepted
    yield database
    empty_all_tables(database)
    database.dispose()


def _resources(database: Database, prefix: str, count: int) -> list[str]:
    with database.session() as session:
        return [
            resources.create_resource(session, f"{prefix}-{i}", "https://x.test/").id for i in range(count)
        ]


def test_fifty_buyers_never_share_a_number(pg: Database, postgres_url: str) -> None:
    buyers = _resources(pg, "buyer", BUYERS)
    outcomes = _run(_buyer, [(postgres_url, rid) for rid in buyers])

    held = Counter(number for _, numbers, _ in outcomes for number in numbers)
    assert held, "nobody got a number"
    assert max(held.values()) == 1, "a number was held by two searches"
    assert sum(held.values()) == STOCK  # demand exceeds stock: every number is handed out once
    failures = Counter(status for _, numbers, status in outcomes if not numbers)
    assert set(failures) <= {"OutOfStock"}
    with pg.session() as session:
        owners = dict(
            session.execute(select(PurchasedNumber.phone_number, PurchasedNumber.resource_id)).all()
        )
        assert session.scalar(select(func.count()).select_from(PurchasedNumber)) == STOCK
        left = session.scalar(
            select(func.count())
            .select_from(InventoryNumber)
            .where(InventoryNumber.area_code == "425", InventoryNumber.status != "purchased")
        )
        assert left == 0
    for resource_id, numbers, status in outcomes:
        if numbers:
            assert status == "succeeded"
            assert all(owners[n] == resource_id for n in numbers)


def test_fifty_reservations_of_the_same_numbers(pg: Database, postgres_url: str) -> None:
    wanted = [n["phoneNumber"] for n in sample_rows(10, US_AREAS[1:2])]
    reservers = _resources(pg, "reserver", BUYERS)
    outcomes = _run(_reserver, [(postgres_url, rid, wanted) for rid in reservers])
    got = Counter(number for _, numbers, _ in outcomes for number in numbers)
    assert sorted(got) == sorted(n.lstrip("+") for n in wanted)
    assert max(got.values()) == 1
    assert all(status in (201, 207) for _, _, status in outcomes)
