"""Routes of a hook's life: register, list, read, change, delete, validate, secrets, the test tool."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from webhooks.api import examples
from webhooks.api.common import (
    ERRORS,
    Cursor,
    HookId,
    Limit,
    Ref,
    account,
    answers,
    idempotency_header,
    request_example,
    service,
)
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
from webhooks.hooks import HookStatus

router = Router()

HookKey = Annotated[
    str | None,
    idempotency_header(
        "Send a retried request with the key of the first: it answers the hook the first one created "
        "instead of registering another; a different request under the same key is a 409"
    ),
]


@router.post(
    "/hooks",
    summary="Register a hook",
    description="Registers a URL for the event types given and starts its validation: publish the "
    "verification file the answer names at one of its `urls`, and the hook becomes `active` at the next "
    "check (the first runs at once; `POST /hooks/{hook_id}/validate` checks again now). Nothing is POSTed "
    "to the URL before. The answer holds the signing `secret`, shown only here and by "
    "`GET /hooks/{hook_id}/secret`.",
    responses=answers(201, "Registered; validation started", HookCreated, examples.CREATED),
)
def create_hook(
    hook: Annotated[HookCreate, Body(openapi_examples=request_example("A JSON hook", examples.CREATE_HOOK))],
    idempotency_key: HookKey = None,
) -> Response[HookCreated]:
    created = service().registry.create(account(router), hook, idempotency_key)
    return Response(201, content_types.APPLICATION_JSON, HookCreated.of_secret(created))


@router.get(
    "/hooks",
    summary="List hooks",
    description="The account's hooks, oldest first, `limit` per page; pass `next_cursor` back as `cursor` "
    "for the next page. Filters: `database`, `collection`, and `event` (hooks subscribed to that type). A "
    "filtered page may be short while a cursor still follows: page until none comes back.",
    responses=answers(200, "A page of hooks", HookList, examples.HOOK_LIST),
)
def list_hooks(
    database: Ref = None,
    collection: Ref = None,
    event: Annotated[EventType | None, Query()] = None,
    status: Annotated[HookStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> HookList:
    hooks, next_cursor = service().registry.list(
        account(router),
        database=database,
        collection=collection,
        event=event,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return HookList(hooks=[HookView.of(h) for h in hooks], next_cursor=next_cursor)


@router.get(
    "/hooks/<hook_id>",
    summary="Read a hook",
    description="The hook, without its secret. While it is `pending_validation`, `last_check` says what the "
    "latest look for the verification file saw at each place (status code, `connection refused`, "
    "`contents differ`, …) and `next_check_at` when the next look is due.",
    responses=answers(200, "The hook", HookView, examples.HOOK),
)
def get_hook(hook_id: HookId) -> HookView:
    return service().registry.view(account(router), hook_id)


@router.patch(
    "/hooks/<hook_id>",
    summary="Change a hook",
    description="Changes only the fields sent; `null` clears an optional one. A new `url` gets a new "
    "verification file and is validated again before anything is POSTed to it. `status: disabled` pauses "
    "deliveries, `status: active` resumes them.",
    responses=answers(200, "The changed hook", HookView, examples.ACTIVE_HOOK),
)
def update_hook(
    hook_id: HookId,
    changes: Annotated[
        HookUpdate, Body(openapi_examples=request_example("Fewer events", examples.UPDATE_HOOK))
    ],
) -> HookView:
    return HookView.of(service().registry.update(account(router), hook_id, changes))


@router.delete(
    "/hooks/<hook_id>",
    summary="Delete a hook",
    description="Removes the hook: no event is delivered to it from then on (fan-out caches hooks for "
    "up to 15 s).",
    responses={204: {"description": "Deleted"}, **ERRORS},
)
def delete_hook(hook_id: HookId) -> Response[None]:
    service().registry.delete(account(router), hook_id)
    return Response(204)


@router.post(
    "/hooks/<hook_id>/validate",
    summary="Check the verification file again now",
    description="Restarts validation with a check at once, then on the usual schedule; for a hook still "
    "pending or one that ended `validation_failed`. Poll `GET /hooks/{hook_id}` for the outcome.",
    responses=answers(202, "Validation restarted", HookView, examples.RESTARTED),
)
def validate_hook(hook_id: HookId) -> Response[HookView]:
    hook = service().registry.restart_validation(account(router), hook_id)
    return Response(202, content_types.APPLICATION_JSON, HookView.of(hook))


@router.get(
    "/hooks/<hook_id>/secret",
    summary="Read the signing secret",
    description="The secret receivers verify `webhook-signature` with (Standard Webhooks, `whsec_…`).",
    responses=answers(200, "The secret", SecretView, examples.SECRET_VIEW),
)
def get_secret(hook_id: HookId) -> SecretView:
    return service().secret(account(router), hook_id)


@router.post(
    "/hooks/<hook_id>/secret/rotate",
    summary="Rotate the signing secret",
    description="A new secret signs from now on; the previous one keeps signing beside it (two "
    "signatures, space-separated) until `previous_secret_expires_at`, so receivers can switch over.",
    responses=answers(200, "The new secret", SecretView, examples.ROTATED),
)
def rotate_secret(hook_id: HookId) -> SecretView:
    hook = service().registry.rotate_secret(account(router), hook_id)
    return SecretView(secret=hook.secret, previous_secret_expires_at=hook.previous_secret_expires_at)


@router.post(
    "/hooks/<hook_id>/test",
    summary="Send a test POST",
    description="POSTs `data` to the hook's (validated) URL right away, in the hook's format and signed "
    "like any delivery, and answers with the receiver's status, time and body (truncated). A hook not "
    "validated yet is a 409.",
    responses=answers(200, "What the receiver answered", TestResult, examples.TEST_RESULT),
)
def test_hook(
    hook_id: HookId,
    test: Annotated[TestIn, Body(openapi_examples=request_example("A made-up click", examples.TEST_IN))],
) -> TestResult:
    return service().test(account(router), hook_id, test.data)
