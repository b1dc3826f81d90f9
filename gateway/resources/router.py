"""Operator admin API for communication resources."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, require_operator
from gateway.resources import service
from gateway.resources.schemas import (
    KeyRegenerate,
    ResourceCreate,
    ResourceList,
    ResourceSummary,
    ResourceWithKeys,
)

router = APIRouter(
    prefix="/admin/resources", tags=["admin: resources"], dependencies=[Depends(require_operator)]
)


@router.post("", status_code=201, response_model=ResourceWithKeys, response_model_by_alias=True)
def create_resource(body: ResourceCreate, database: AppDatabase, settings: AppSettings) -> ResourceWithKeys:
    with database.session() as session:
        resource = service.create_resource(
            session, body.name, body.endpoint or settings.effective_public_endpoint
        )
        return ResourceWithKeys.of(resource)


@router.get("", response_model=ResourceList, response_model_by_alias=True)
def list_resources(database: AppDatabase) -> ResourceList:
    with database.session() as session:
        return ResourceList(value=[ResourceSummary.of(r) for r in service.list_resources(session)])


@router.get("/{resource}", response_model=ResourceWithKeys, response_model_by_alias=True)
def get_resource(resource: str, database: AppDatabase) -> ResourceWithKeys:
    with database.session() as session:
        return ResourceWithKeys.of(service.get_resource(session, resource))


@router.delete("/{resource}", status_code=204)
async def delete_resource(resource: str, database: AppDatabase) -> Response:
    def run() -> None:
        with database.session() as session:
            service.delete_resource(session, resource)

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.post("/{resource}:regenerateKey", response_model=ResourceWithKeys, response_model_by_alias=True)
def regenerate_key(resource: str, body: KeyRegenerate, database: AppDatabase) -> ResourceWithKeys:
    with database.session() as session:
        return ResourceWithKeys.of(service.regenerate_key(session, resource, body.key_type))
