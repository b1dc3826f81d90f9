"""Route of operator information: POST operatorInformation/:search (operator_information.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway.core.auth import AuthenticatedTenant
from gateway.core.openapi import request_body
from gateway.numbers import operator_information as operator_info
from gateway.numbers.routes.http import parse, request_json
from gateway.numbers.schemas import OperatorInformationRequest

router = APIRouter()


@router.post("/operatorInformation/:search", openapi_extra=request_body(OperatorInformationRequest))
async def operator_information(request: Request, tenant: AuthenticatedTenant) -> dict[str, Any]:
    body: OperatorInformationRequest = parse(OperatorInformationRequest, await request_json(request))
    details = bool(body.options and body.options.include_additional_operator_details)
    return {"values": operator_info.operator_information(body.phone_numbers, details)}
