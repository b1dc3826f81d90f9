"""Property tests (hypothesis) of the pure rules: E.164 normalisation, capabilities, import-row
validation, and that the SQL inventory filter agrees with its pure reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.numbers.models import Carrier, InventoryNumber
from gateway.numbers.repository.filters import filter_clauses
from gateway.numbers.rules import (
    CAPABILITY_VALUES,
    InvalidPhoneNumber,
    InventoryView,
    NumberFilter,
    capability_satisfies,
    filter_numbers,
    normalise_e164,
    offered_values_for,
    validate_import_row,
)
from gateway.numbers.sample import sample_rows

REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r) is not None)
capability = st.sampled_from(CAPABILITY_VALUES)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(
        st.sampled_from([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE])
    )
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    assert example is not None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


@st.composite
def decorated(draw: st.DrawFn, e164: str) -> str:
    """The same number as a person might type it: separators, brackets, 00 instead of +."""
    digits = e164[1:]
    out = []
    for digit in digits:
        out.append(digit)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from([" ", "-", ".", ") ", " ("])))
    body = "".join(out)
    prefix = draw(st.sampled_from(["+", "00", "+ "]))
    return prefix + body


@given(valid_numbers().flatmap(lambda n: st.tuples(st.just(n), decorated(n))))
def test_normalise_recovers_e164_from_any_decoration(pair: tuple[str, str]) -> None:
    e164, typed = pair
    assert normalise_e164(typed) == e164


@given(valid_numbers())
def test_normalise_is_idempotent_and_e164(e164: str) -> None:
    once = normalise_e164(e164)
    assert normalise_e164(once) == once
    assert once.startswith("+")
    assert once[1:].isdigit()
    assert len(once) <= 16
    assert normalise_e164(once[1:]) == once  # digits only: the ACS id form


@given(st.text(alphabet="+0123456789 -()abc", max_size=20))
def test_normalise_accepts_only_valid_numbers(text: str) -> None:
    try:
        result = normalise_e164(text)
    except InvalidPhoneNumber:
        return
    assert phonenumbers.is_valid_number(phonenumbers.parse(result, None))


@given(capability, capability, capability)
def test_capabilities_are_a_partial_order(a: str, b: str, c: str) -> None:
    assert capability_satisfies(a, a)
    assert capability_satisfies(a, "none")
    assert capability_satisfies("inbound+outbound", a)
    if capability_satisfies(a, b) and capability_satisfies(b, c):
        assert capability_satisfies(a, c)
    if capability_satisfies(a, b) and capability_satisfies(b, a):
        assert a == b
    assert (a in offered_values_for(b)) == capability_satisfies(a, b)


ROW_FIELDS = st.fixed_dictionaries(
    {
        "assignmentType": st.sampled_from(["person", "application"]),
        "calling": capability,
        "sms": capability,
        "costAmount": st.decimals(min_value=0, max_value=1000, places=2).map(str),
    }
)


@given(ROW_FIELDS, st.integers(0, 9))
def test_valid_rows_are_accepted_and_normalised(fields: dict[str, str], index: int) -> None:
    row = {**list(sample_rows(10, carrier="acme"))[index], **fields}
    result = validate_import_row(row)
    assert not isinstance(result, list), result
    assert result.phone_number == row["phoneNumber"]
    assert result.cost_amount == Decimal(row["costAmount"])


@given(
    st.integers(0, 9),
    st.sampled_from(["phoneNumber", "countryCode", "phoneNumberType", "calling", "costAmount", "areaCode"]),
    st.sampled_from(["", "garbage", "-5", "+x1", "ZZ", "1e999"]),
)
def test_a_broken_field_rejects_the_row(index: int, column: str, value: str) -> None:
    row = {**list(sample_rows(10, carrier="acme"))[index], column: value}
    assert isinstance(validate_import_row(row), list)


# The SQL filter agrees with rules.matches -------------------------------------------------------------

POOL = [r["phoneNumber"] for r in sample_rows(4)] + ["+18005550100", "+18005550101"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def inventories(draw: st.DrawFn) -> list[InventoryView]:
    numbers = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=len(POOL)))
    views = []
    for number in numbers:
        offset = draw(st.one_of(st.none(), st.integers(-3, 3)))
        views.append(
            InventoryView(
                phone_number=number,
                country_code=draw(st.sampled_from(["US", "CA"])),
                phone_number_type=draw(st.sampled_from(["geographic", "tollFree"])),
                assignment_type=draw(st.sampled_from(["person", "application"])),
                area_code=number[2:5],
                calling=draw(capability),
                sms=draw(capability),
                free_at=None if offset is None else NOW + timedelta(minutes=offset),
            )
        )
    return views


filters = st.builds(
    NumberFilter,
    country_code=st.sampled_from(["US", "CA"]),
    phone_number_type=st.sampled_from(["geographic", "tollFree"]),
    assignment_type=st.none() | st.sampled_from(["person", "application"]),
    area_code=st.none() | st.sampled_from(["425", "206", "800"]),
    calling=st.none() | capability,
    sms=st.none() | capability,
    prefixes=st.lists(st.sampled_from(["1", "1425", "1206", "1800", "14252"]), max_size=2).map(tuple),
)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path: Path = tmp_path_factory.mktemp("prop") / "prop.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    with database.session() as session:
        session.add(Carrier(id="c1", name="c1", kind="sip", notes=""))
    return database


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inventories(), filters)
def test_sql_filter_matches_reference(
    sqlite_db: Database, views: list[InventoryView], wanted: NumberFilter
) -> None:
    with sqlite_db.session() as session:
        session.execute(delete(InventoryNumber))
        if views:
            session.execute(
                insert(InventoryNumber),
                [
                    {
                        **{k: getattr(v, k) for k in InventoryView.__slots__},
                        "locality": "",
                        "administrative_division": "",
                        "cost_amount": Decimal(1),
                        "currency_code": "USD",
                        "carrier_id": "c1",
                        "status": "available" if v.free_at is not None else "purchased",
                        "imported_at": NOW,
                        "updated_at": NOW,
                    }
                    for v in views
                ],
            )
        found = sorted(
            session.scalars(select(InventoryNumber.phone_number).where(*filter_clauses(wanted, NOW)))
        )
    assert found == filter_numbers(views, wanted, NOW)
