"""Request bodies: JSON parsed into a pydantic model, with the same 400s wherever it is done."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.core import jsonio
from gateway.core.errors import InvalidField
from gateway.core.text import TEXT_CHECKED, json_text_problem, may_hide_bad_text

ModelT = TypeVar("ModelT", bound=BaseModel)


def json_body(raw: bytes) -> Any:
    """The JSON of a request body (None when it is empty); BadRequest when it is not JSON,
    InvalidRequest naming the field when a string breaks the text rule (gateway.core.text)."""
    if not raw:
        return None
    try:
        data = jsonio.loads(raw)
    except ValueError as exc:
        raise InvalidField("The request body is not valid JSON.", code="BadRequest") from exc
    if may_hide_bad_text(raw) and (found := json_text_problem(data)):
        raise InvalidField(found.message(), found.where)
    return data


# What validated() tells InputModel: the data came from json_body, whose text is checked.
_CHECKED = {TEXT_CHECKED: True}


def validated(model: type[ModelT], data: Any) -> ModelT:
    """``data`` (from ``json_body``) as a ``model``; RequestValidationError (answered as ACS's
    InvalidRequest, with the field's place in the body) when it does not validate."""
    try:
        return model.model_validate(data, context=_CHECKED)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


def parse_model(raw: bytes, model: type[ModelT]) -> ModelT:
    """``raw`` as a ``model``: an empty body validates as ``{}``."""
    return validated(model, json_body(raw) if raw else {})
