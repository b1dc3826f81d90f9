"""The official PhoneNumbersClient (azure-communication-phonenumbers 1.4.0) against a real
``trunkline api`` over HTTPS, with the SDK's own LRO pollers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.communication.phonenumbers import (
    PhoneNumberAssignmentType,
    PhoneNumberCapabilities,
    PhoneNumberCapabilityType,
    PhoneNumbersClient,
    PhoneNumberType,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.e2e.numbers.conftest import NumbersServer

pytestmark = pytest.mark.e2e
POLL = {"polling_interval": 0.1}


_clients: list[PhoneNumbersClient] = []


def client_for(tenant: dict[str, Any]) -> PhoneNumbersClient:
    client = PhoneNumbersClient.from_connection_string(tenant["connectionString"])
    _clients.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close the SDK's keep-alive connections so the server shuts down promptly."""
    yield
    while _clients:
        _clients.pop()._phone_number_client.close()


def test_catalogue(numbers_server: NumbersServer, tenant_a: dict[str, Any]) -> None:
    client = client_for(tenant_a)
    countries = list(client.list_available_countries())
    assert [(c.country_code, c.localized_name) for c in countries] == [("US", "United States")]
    localities = {
        loc.localized_name: loc.administrative_division.abbreviated_name
        for loc in client.list_available_localities("US", phone_number_type=PhoneNumberType.GEOGRAPHIC)
    }
    assert localities == {"Redmond": "WA", "Seattle": "WA"}
    area_codes = [
        a.area_code for a in client.list_available_area_codes("US", "geographic", locality="Seattle")
    ]
    assert area_codes == ["206"]
    toll_free = [a.area_code for a in client.list_available_area_codes("US", PhoneNumberType.TOLL_FREE)]
    assert toll_free == ["800"]
    offerings = list(client.list_available_offerings("US", phone_number_type="tollFree"))
    assert len(offerings) == 1
    assert offerings[0].cost.amount == 2.0
    assert offerings[0].available_capabilities.sms == "inbound+outbound"


def test_search_purchase_update_release(
    numbers_server: NumbersServer, tenant_a: dict[str, Any], tenant_b: dict[str, Any]
) -> None:
    client = client_for(tenant_a)
    poller = client.begin_search_available_phone_numbers(
        "US",
        PhoneNumberType.GEOGRAPHIC,
        PhoneNumberAssignmentType.APPLICATION,
        PhoneNumberCapabilities(
            calling=PhoneNumberCapabilityType.INBOUND, sms=PhoneNumberCapabilityType.INBOUND_OUTBOUND
        ),
        area_code="425",
        quantity=2,
        **POLL,
    )
    search = poller.result(timeout=30)
    assert poller.status().lower() == "succeeded"
    assert len(search.phone_numbers) == 2
    assert all(n.startswith("+1425") for n in search.phone_numbers)
    assert search.search_expires_by is not None
    # Another resource can neither see nor buy this search.
    other = client_for(tenant_b)
    with pytest.raises(HttpResponseError) as foreign:
        other.begin_purchase_phone_numbers(search.search_id, **POLL).result(timeout=30)
    assert foreign.value.status_code == 404

    client.begin_purchase_phone_numbers(search.search_id, **POLL).result(timeout=30)
    owned = {n.phone_number: n for n in client.list_purchased_phone_numbers()}
    assert set(search.phone_numbers) <= set(owned)
    assert not {n.phone_number for n in other.list_purchased_phone_numbers()} & set(owned)
    number = search.phone_numbers[0]
    got = client.get_purchased_phone_number(number)
    assert got.capabilities.calling == "inbound"
    assert got.purchase_date is not None
    with pytest.raises(ResourceNotFoundError):
        other.get_purchased_phone_number(number)

    updated = client.begin_update_phone_number_capabilities(
        number,
        sms=PhoneNumberCapabilityType.OUTBOUND,
        calling=PhoneNumberCapabilityType.INBOUND_OUTBOUND,
        **POLL,
    ).result(timeout=30)
    assert (updated.capabilities.calling, updated.capabilities.sms) == ("inbound+outbound", "outbound")

    client.begin_release_phone_number(number, **POLL).result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        client.get_purchased_phone_number(number)
    # Quarantine is 0 here: the number is back in inventory for everyone.
    listed = numbers_server.cli("numbers", "list", "--status", "available", "--top", "1000", "--json").stdout
    assert number in listed


def test_browse_reserve_purchase(numbers_server: NumbersServer, tenant_b: dict[str, Any]) -> None:
    client = client_for(tenant_b)
    browsed = client.browse_available_phone_numbers(
        country_code="US",
        phone_number_type=PhoneNumberType.GEOGRAPHIC,
        phone_number_prefixes=["1206"],
        calling_capability=PhoneNumberCapabilityType.OUTBOUND,
    )
    assert len(browsed.phone_numbers) >= 3
    assert all(n.phone_number.startswith("+1206") for n in browsed.phone_numbers)
    reservation_id = str(uuid.uuid4())
    reservation = client.create_or_update_reservation(
        reservation_id=reservation_id, numbers_to_add=browsed.phone_numbers[:3]
    )
    assert reservation.status == "active"
    assert len(reservation.phone_numbers) == 3
    reservation = client.create_or_update_reservation(
        reservation_id=reservation_id, numbers_to_remove=[browsed.phone_numbers[0].id]
    )
    assert set(reservation.phone_numbers) == {n.id for n in browsed.phone_numbers[1:3]}
    assert client.get_reservation(reservation_id).expires_at is not None
    assert reservation_id in [r.id for r in client.list_reservations()]

    client.begin_purchase_reservation(reservation_id, **POLL).result(timeout=30)
    owned = {n.phone_number for n in client.list_purchased_phone_numbers()}
    assert {n.phone_number for n in browsed.phone_numbers[1:3]} <= owned
    assert client.get_reservation(reservation_id).status == "completed"

    doomed = str(uuid.uuid4())
    client.create_or_update_reservation(reservation_id=doomed, numbers_to_add=[browsed.phone_numbers[0]])
    client.delete_reservation(doomed)
    with pytest.raises(ResourceNotFoundError):
        client.get_reservation(doomed)


def test_errors_and_operator_information(numbers_server: NumbersServer, tenant_a: dict[str, Any]) -> None:
    client = client_for(tenant_a)
    with pytest.raises(HttpResponseError) as bad_country:
        client.begin_search_available_phone_numbers(
            "XX", "geographic", "application", PhoneNumberCapabilities(calling="inbound", sms="none"), **POLL
        )
    assert bad_country.value.status_code == 400
    assert bad_country.value.error.code == "InvalidCountryCode"
    with pytest.raises(HttpResponseError) as out_of_stock:
        client.begin_search_available_phone_numbers(
            "US", "mobile", "person", PhoneNumberCapabilities(calling="inbound", sms="none"), **POLL
        ).result(timeout=30)
    assert "OutOfStock" in str(out_of_stock.value)
    with pytest.raises(HttpResponseError) as malformed:
        client.get_purchased_phone_number("+12-not-a-number")
    assert malformed.value.status_code == 400

    info = client.search_operator_information(["+14255550123", "+447400123456"])
    assert [v.phone_number for v in info.values] == ["+14255550123", "+447400123456"]
    assert info.values[0].national_format == "(425) 555-0123"
    assert info.values[0].iso_country_code is None  # only with includeAdditionalOperatorDetails
    from azure.communication.phonenumbers import OperatorInformationOptions

    detailed = client.search_operator_information(
        ["+447400123456"], options=OperatorInformationOptions(include_additional_operator_details=True)
    )
    assert detailed.values[0].iso_country_code == "GB"
    assert detailed.values[0].number_type == "mobile"
    assert detailed.values[0].operator_details.name == "Three"  # libphonenumber carrier data


def test_async_client_search_purchase_release(
    numbers_server: NumbersServer, tenant_b: dict[str, Any]
) -> None:
    """The aio client signs percent-decoded paths and runs its own async pollers."""
    import asyncio

    from azure.communication.phonenumbers.aio import PhoneNumbersClient as AsyncPhoneNumbersClient
    from azure.core.pipeline.transport import AsyncioRequestsTransport

    async def run() -> None:
        # azure-core's asyncio transport over requests: no aiohttp needed.
        transport = AsyncioRequestsTransport()
        client = AsyncPhoneNumbersClient.from_connection_string(
            tenant_b["connectionString"], transport=transport
        )
        async with client:
            poller = await client.begin_search_available_phone_numbers(
                "US",
                "tollFree",
                "application",
                PhoneNumberCapabilities(calling="inbound", sms="inbound+outbound"),
                area_code="800",
                **POLL,
            )
            search = await poller.result()
            assert len(search.phone_numbers) == 1
            number = search.phone_numbers[0]
            await (await client.begin_purchase_phone_numbers(search.search_id, **POLL)).result()
            owned = await client.get_purchased_phone_number(number)
            assert owned.phone_number_type == "tollFree"
            await (await client.begin_release_phone_number(number, **POLL)).result()
            with pytest.raises(ResourceNotFoundError):
                await client.get_purchased_phone_number(number)

    asyncio.run(asyncio.wait_for(run(), timeout=60))
