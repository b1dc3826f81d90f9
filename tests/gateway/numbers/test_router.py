"""The assembled numbers routers (gateway/numbers/router.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.numbers import operations
from gateway.numbers.router import admin_router, router

# (path, method, operationId) of every numbers route, in the order the API matches them.
ROUTES = [
    ("/availablePhoneNumbers/countries", "GET", "list_countries_availablePhoneNumbers_countries_get"),
    (
        "/availablePhoneNumbers/countries/{countryCode}/localities",
        "GET",
        "list_localities_availablePhoneNumbers_countries__countryCode__localities_get",
    ),
    (
        "/availablePhoneNumbers/countries/{countryCode}/areaCodes",
        "GET",
        "list_area_codes_availablePhoneNumbers_countries__countryCode__areaCodes_get",
    ),
    (
        "/availablePhoneNumbers/countries/{countryCode}/offerings",
        "GET",
        "list_offerings_availablePhoneNumbers_countries__countryCode__offerings_get",
    ),
    (
        "/availablePhoneNumbers/countries/{countryCode}/:search",
        "POST",
        "search_availablePhoneNumbers_countries__countryCode___search_post",
    ),
    (
        "/availablePhoneNumbers/searchResults/{searchId}",
        "GET",
        "get_search_result_availablePhoneNumbers_searchResults__searchId__get",
    ),
    ("/availablePhoneNumbers/:purchase", "POST", "purchase_availablePhoneNumbers__purchase_post"),
    (
        "/availablePhoneNumbers/countries/{countryCode}/:browse",
        "POST",
        "browse_availablePhoneNumbers_countries__countryCode___browse_post",
    ),
    (
        "/availablePhoneNumbers/reservations",
        "GET",
        "list_reservations_availablePhoneNumbers_reservations_get",
    ),
    (
        "/availablePhoneNumbers/reservations/{reservationId}",
        "PATCH",
        "upsert_reservation_availablePhoneNumbers_reservations__reservationId__patch",
    ),
    (
        "/availablePhoneNumbers/reservations/{reservationId}",
        "GET",
        "get_reservation_availablePhoneNumbers_reservations__reservationId__get",
    ),
    (
        "/availablePhoneNumbers/reservations/{reservationId}",
        "DELETE",
        "delete_reservation_availablePhoneNumbers_reservations__reservationId__delete",
    ),
    (
        "/availablePhoneNumbers/reservations/{reservationId}/:purchase",
        "POST",
        "purchase_reservation_availablePhoneNumbers_reservations__reservationId___purchase_post",
    ),
    (
        "/phoneNumbers/operations/{operationId}",
        "GET",
        "get_operation_phoneNumbers_operations__operationId__get",
    ),
    (
        "/phoneNumbers/operations/{operationId}",
        "DELETE",
        "cancel_operation_phoneNumbers_operations__operationId__delete",
    ),
    ("/phoneNumbers", "GET", "list_phone_numbers_phoneNumbers_get"),
    ("/phoneNumbers/{phoneNumber}", "GET", "get_phone_number_phoneNumbers__phoneNumber__get"),
    (
        "/phoneNumbers/{phoneNumber}/capabilities",
        "PATCH",
        "update_capabilities_phoneNumbers__phoneNumber__capabilities_patch",
    ),
    ("/phoneNumbers/{phoneNumber}", "DELETE", "release_phone_number_phoneNumbers__phoneNumber__delete"),
    ("/operatorInformation/:search", "POST", "operator_information_operatorInformation__search_post"),
    ("/admin/carriers", "POST", "admin_create_carrier_admin_carriers_post"),
    ("/admin/carriers", "GET", "admin_list_carriers_admin_carriers_get"),
    ("/admin/carriers/{name}", "DELETE", "admin_delete_carrier_admin_carriers__name__delete"),
    ("/admin/numbers:import", "POST", "admin_import_admin_numbers_import_post"),
    ("/admin/numbers", "GET", "admin_list_numbers_admin_numbers_get"),
]


def test_every_operation_type_has_its_handler_once_the_router_is_imported() -> None:
    # Handlers register from the module that starts their operation; the API imports them all.
    assert router is not None
    assert set(operations.HANDLERS) == set(operations.OPERATION_TYPES)
    assert set(operations.FAILURE_HOOKS) == {"search", "reservationPurchase"}


def test_routes_keep_their_order_names_and_tags(client: TestClient) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    found = [
        (path, method.upper(), operation["operationId"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if {"phone numbers", "admin: numbers"} & set(operation.get("tags", []))
    ]
    assert sorted(found) == sorted(ROUTES)
    paths = list(dict.fromkeys(path for path, _, _ in ROUTES))
    assert [p for p in schema["paths"] if p in paths] == paths
    assert router.tags == ["phone numbers"]
    assert admin_router.tags == ["admin: numbers"]
    assert admin_router.prefix == "/admin"
