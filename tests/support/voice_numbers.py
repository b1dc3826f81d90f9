"""A number the test resource owns for calls: an inventory row of the test SIP carrier, purchased."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from gateway.core.db import Database
from gateway.numbers.models import Carrier, InventoryNumber, PurchasedNumber


def own_voice_number(database: Database, resource_id: str, e164: str, calling: str) -> None:
    """``e164`` purchased by ``resource_id`` with ``calling`` capability (no SMS)."""
    with database.session() as session:
        carrier = session.scalar(select(Carrier).where(Carrier.name == "voice-test"))
        if carrier is None:
            carrier = Carrier(name="voice-test", kind="sip")
            session.add(carrier)
            session.flush()
        common: dict[str, Any] = {
            "phone_number": e164,
            "country_code": "US",
            "phone_number_type": "geographic",
            "assignment_type": "application",
            "calling": calling,
            "sms": "none",
            "cost_amount": Decimal("1.00"),
            "currency_code": "USD",
        }
        session.add(InventoryNumber(**common, area_code=e164[2:5], carrier_id=carrier.id, status="purchased"))
        session.flush()
        session.add(PurchasedNumber(**common, resource_id=resource_id))
