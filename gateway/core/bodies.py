"""Request bodies: JSON parsed into a pydantic model, with the same 400s wherever it is done."""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.core.errors import BadRequest

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_model(raw: bytes, model: type[ModelT]) -> ModelT:
    """``raw`` as a ``model``; BadRequest for JSON that does not parse, RequestValidationError
    (answered as ACS's InvalidRequest) for a body that does not validate."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise BadRequest("The request body is not valid JSON.") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
