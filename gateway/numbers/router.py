"""Phone Numbers API 2025-06-01 (``PhoneNumbers/2025-06-01/phonenumbers.json``) and the operator's
inventory API under /admin, assembled from routes/ (one module per concern) in the order the
routes are matched. Routes are thin: the rules live in the concern modules beside this one."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gateway.core.auth import api_version, require_operator
from gateway.numbers.acs import API_VERSION
from gateway.numbers.routes import (
    admin,
    catalogue,
    operations,
    operator_information,
    purchased,
    reservations,
    searches,
)

router = APIRouter(tags=["phone numbers"], dependencies=[api_version(API_VERSION)])
for concern in (catalogue, searches, reservations, operations, purchased, operator_information):
    router.include_router(concern.router)

admin_router = APIRouter(prefix="/admin", tags=["admin: numbers"], dependencies=[Depends(require_operator)])
admin_router.include_router(admin.router)
