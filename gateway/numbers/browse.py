"""Browse of the tenant API (POST :browse, 2025-06-01): a random sample of available numbers
matching a filter, shown as reservations show their numbers (``available_json``)."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

from gateway.core.settings import Settings
from gateway.numbers.acs import cost_json, not_resell_required
from gateway.numbers.models import InventoryNumber
from gateway.numbers.repository import catalogue as repository
from gateway.numbers.rules import NumberFilter, normalise_prefix, number_id


def available_json(
    number: InventoryNumber,
    settings: Settings,
    status: str,
    calling: str | None = None,
    sms: str | None = None,
) -> dict[str, Any]:
    return {
        "id": number_id(number.phone_number),
        "countryCode": number.country_code,
        "phoneNumber": number.phone_number,
        "capabilities": {"calling": calling or number.calling, "sms": sms or number.sms},
        "phoneNumberType": number.phone_number_type,
        "assignmentType": number.assignment_type,
        "cost": cost_json(number.cost_amount, number.currency_code),
        "status": status,
        "isAgreementToNotResellRequired": not_resell_required(settings, number.country_code),
    }


def browse(
    session: Session, country_code: str, wanted: NumberFilter, settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    """Available numbers matching ``wanted``, at random.

    A random point of the number space (within a requested prefix, else the country's calling
    code) is picked and the next ``BROWSE_WINDOW`` numbers (repository/catalogue.py) by primary
    key are filtered: a bounded index range scan, whatever the size of the inventory; the answer
    is a random sample of the matches. If a few tries find too few (sparse matches), the rest
    comes from the search index. Numbers right after a gap in the number space are likelier
    picks than others: random, not uniform.
    """
    limit = settings.numbers_browse_max_results
    wanted = dataclasses.replace(wanted, prefixes=tuple(normalise_prefix(p) for p in wanted.prefixes))
    seeds = list(wanted.prefixes) or [str(phonenumbers.country_code_for_region(country_code))]
    candidates: set[str] = set()
    for _ in range(3):
        seed = random.choice(seeds)  # noqa: S311 - not security-relevant
        digits = max(0, 15 - len(seed))
        pivot = "+" + seed + "".join(random.choices("0123456789", k=digits))  # noqa: S311
        candidates.update(repository.window_matches(session, wanted, now, pivot, seed))
        if len(candidates) >= limit:
            break
    picked = random.sample(sorted(candidates), min(limit, len(candidates)))
    chosen = {n.phone_number: n for n in repository.numbers_by_id(session, picked)}
    if len(chosen) < limit:
        for number in repository.first_matches(session, wanted, now, chosen.keys(), limit - len(chosen)):
            chosen[number.phone_number] = number
    found = list(chosen.values())
    random.shuffle(found)
    return [available_json(n, settings, "available", wanted.calling, wanted.sms) for n in found]
