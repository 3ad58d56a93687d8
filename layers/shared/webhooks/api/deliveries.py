"""Routes of a hook's deliveries: the log of attempts, and replaying the failed ones."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from webhooks.api.common import ERRORS, OK, Cursor, HookId, Limit, account, service
from webhooks.api_models import AttemptList, ReplayIn, ReplayResult
from webhooks.event_types import EventType

router = Router()


Outcome = Annotated[
    Literal["succeeded", "retrying", "failed", "delayed"] | None,
    Query(description="only attempts with this outcome"),
]
Type = Annotated[EventType | None, Query(description="only attempts of events of this type")]


@router.get("/hooks/<hook_id>/deliveries", responses=OK)
def list_deliveries(
    hook_id: HookId, limit: Limit = 50, cursor: Cursor = None, outcome: Outcome = None, type: Type = None
) -> AttemptList:
    return service().attempts(
        account(router), hook_id, limit=limit, cursor=cursor, outcome=outcome, event_type=type
    )


@router.post("/hooks/<hook_id>/replay", responses={202: {"description": "Queued again"}, **ERRORS})
def replay(hook_id: HookId, window: Annotated[ReplayIn | None, Body()] = None) -> Response[ReplayResult]:
    window = window or ReplayIn()
    result = service().replay(account(router), hook_id, since=window.since, until=window.until)
    return Response(202, content_types.APPLICATION_JSON, result)
