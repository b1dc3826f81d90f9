"""Helpers of the SMS tests: numbers owned by a resource without going through a purchase."""

from __future__ import annotations

from decimal import Decimal

from gateway.core.db import Database
from gateway.numbers.models import Carrier, InventoryNumber, PurchasedNumber
from gateway.resources.models import Resource


def give_number(database: Database, resource_id: str, e164: str, sms: str = "inbound+outbound") -> None:
    """Record ``e164`` as purchased by ``resource_id`` (what a completed purchase leaves behind)."""
    with database.session() as session:
        carrier = session.query(Carrier).filter_by(name="sms-test").one_or_none()
        if carrier is None:
            carrier = Carrier(name="sms-test", kind="smpp")
            session.add(carrier)
            session.flush()
        session.add(
            InventoryNumber(
                phone_number=e164,
                country_code="US",
                phone_number_type="geographic",
                assignment_type="application",
                area_code=e164[2:5],
                calling="none",
                sms=sms,
                cost_amount=Decimal("1.00"),
                currency_code="USD",
                carrier_id=carrier.id,
                status="purchased",
            )
        )
        session.flush()
        session.add(
            PurchasedNumber(
                phone_number=e164,
                resource_id=resource_id,
                country_code="US",
                phone_number_type="geographic",
                assignment_type="application",
                calling="none",
                sms=sms,
                cost_amount=Decimal("1.00"),
                currency_code="USD",
            )
        )


def resource_id_of(database: Database, name: str) -> str:
    with database.session() as session:
        resource = session.query(Resource).filter_by(name=name).one()
        return resource.id
