from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.clients import service
from invoiceflow.clients.schemas import ClientCreate, ClientFilters, ClientPage, ClientRead, ClientUpdate
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.runtime import SessionDep

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("", status_code=201, response_model=Envelope[ClientRead])
async def create_client(
    data: ClientCreate, actor: ActorDep, session: SessionDep, request: Request, key: IdemKey = None
) -> Response:
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    client = await service.create_client(session, actor, data)
    out = ClientRead.model_validate(client).model_dump(mode="json")
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("", response_model=Envelope[ClientPage])
async def list_clients(actor: ActorDep, session: SessionDep, filters: Annotated[ClientFilters, Query()]) -> Response:
    rows, cursor = await service.list_clients(session, actor, filters)
    return envelope(
        ClientPage(items=[ClientRead.model_validate(r) for r in rows], next_cursor=cursor, limit=filters.limit)
    )


@router.get("/{client_id}", response_model=Envelope[ClientRead])
async def get_client(client_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(ClientRead.model_validate(await service.get_client(session, actor, client_id)))


@router.patch("/{client_id}", response_model=Envelope[ClientRead])
async def update_client(client_id: uuid.UUID, data: ClientUpdate, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(ClientRead.model_validate(await service.update_client(session, actor, client_id, data)))


@router.delete("/{client_id}", response_model=Envelope[ClientRead])
async def delete_client(client_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(ClientRead.model_validate(await service.delete_client(session, actor, client_id)))
