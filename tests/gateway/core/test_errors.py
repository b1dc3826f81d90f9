"""ACS's error exceptions, their bodies, and ASP.NET Core's names for problem fields."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import errors
from gateway.core.errors import AcsError, BadRequest, Conflict, NotFound, Unauthorized


def test_error_body_shape() -> None:
    assert errors.error_body("Code", "message") == {"error": {"code": "Code", "message": "message"}}
    assert errors.error_body("Code", "message", "field") == {
        "error": {"code": "Code", "message": "message", "target": "field"}
    }


@pytest.mark.parametrize(
    ("error", "status", "code", "target"),
    [
        (BadRequest("m", "name"), 400, "BadRequest", "name"),
        (BadRequest("m", code="InvalidThing"), 400, "InvalidThing", None),
        (NotFound("m", "id", code="IdentityNotFound"), 404, "IdentityNotFound", "id"),
        (Conflict("m", "name"), 409, "Conflict", "name"),
        (Unauthorized("m"), 401, "Denied", None),
        (AcsError(501, "NotImplemented", "m"), 501, "NotImplemented", None),
    ],
)
def test_error_classes(error: AcsError, status: int, code: str, target: str | None) -> None:
    assert error.status_code == status
    assert error.body() == errors.error_body(code, "m", target)
    assert str(error) == "m"


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "smsRecipients", 0, "to"), "SmsRecipients[0].To"),
        (("body", "from"), "From"),
        ("smsSendOptions.deliveryReportTimeoutInSeconds", "SmsSendOptions.DeliveryReportTimeoutInSeconds"),
        ("smsRecipients[12].to", "SmsRecipients[12].To"),
        (("body",), "$"),
        (None, "$"),
    ],
)
def test_problem_field_names_are_aspnet_model_names(loc: Any, expected: str) -> None:
    assert errors.problem_field_name(loc) == expected
