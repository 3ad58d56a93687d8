"""Routes of a hook's life: register, list, read, change, delete, validate, secrets, the test tool."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from webhooks.api.common import ERRORS, OK, Cursor, HookId, Limit, Ref, account, idempotency_header, service
from webhooks.api_models import (
    HookCreate,
    HookCreated,
    HookList,
    HookUpdate,
    HookView,
    SecretView,
    TestIn,
    TestResult,
)
from webhooks.event_types import EventType

router = Router()

HookKey = Annotated[
    str | None,
    idempotency_header(
        "Send a retried request with the key of the first: it answers the hook the first one created "
        "instead of registering another; a different request under the same key is a 409"
    ),
]


@router.post("/hooks", responses={201: {"description": "Created; validation started"}, **ERRORS})
def create_hook(hook: HookCreate, idempotency_key: HookKey = None) -> Response[HookCreated]:
    created = service().registry.create(account(router), hook, idempotency_key)
    return Response(201, content_types.APPLICATION_JSON, HookCreated.of_secret(created))


@router.get("/hooks", responses=OK)
def list_hooks(
    database: Ref = None,
    collection: Ref = None,
    event: Annotated[EventType | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> HookList:
    hooks, next_cursor = service().registry.list(
        account(router), database=database, collection=collection, event=event, limit=limit, cursor=cursor
    )
    return HookList(hooks=[HookView.of(h) for h in hooks], next_cursor=next_cursor)


@router.get("/hooks/<hook_id>", responses=OK)
def get_hook(hook_id: HookId) -> HookView:
    return service().registry.view(account(router), hook_id)


@router.patch("/hooks/<hook_id>", responses=OK)
def update_hook(hook_id: HookId, changes: HookUpdate) -> HookView:
    return HookView.of(service().registry.update(account(router), hook_id, changes))


@router.delete("/hooks/<hook_id>", responses={204: {"description": "Deleted"}, **ERRORS})
def delete_hook(hook_id: HookId) -> Response[None]:
    service().registry.delete(account(router), hook_id)
    return Response(204)


@router.post("/hooks/<hook_id>/validate", responses={202: {"description": "Validation restarted"}, **ERRORS})
def validate_hook(hook_id: HookId) -> Response[HookView]:
    hook = service().registry.restart_validation(account(router), hook_id)
    return Response(202, content_types.APPLICATION_JSON, HookView.of(hook))


@router.get("/hooks/<hook_id>/secret", responses=OK)
def get_secret(hook_id: HookId) -> SecretView:
    return service().secret(account(router), hook_id)


@router.post("/hooks/<hook_id>/secret/rotate", responses=OK)
def rotate_secret(hook_id: HookId) -> SecretView:
    hook = service().registry.rotate_secret(account(router), hook_id)
    return SecretView(secret=hook.secret, previous_secret_expires_at=hook.previous_secret_expires_at)


@router.post("/hooks/<hook_id>/test", responses=OK)
def test_hook(hook_id: HookId, test: TestIn) -> TestResult:
    return service().test(account(router), hook_id, test.data)
