"""Routes of a hook's deliveries: the log of attempts, and replaying the failed ones."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from webhooks.api import examples
from webhooks.api.common import Cursor, HookId, Limit, account, answers, request_example, service
from webhooks.api_models import AttemptList, ReplayIn, ReplayResult
from webhooks.delivery_log import Outcome
from webhooks.event_types import EventType

router = Router()


FailedOnly = Annotated[
    bool,
    Query(
        description="Only the attempts that did not succeed (retrying or failed). A page may then be short, "
        "even empty, while a cursor still follows"
    ),
]
OutcomeFilter = Annotated[Outcome | None, Query(description="Only attempts with this outcome")]
Type = Annotated[EventType | None, Query(description="Only attempts of events of this type")]


@router.get(
    "/hooks/<hook_id>/deliveries",
    summary="The delivery log",
    description="Every attempt to deliver to this hook, newest first: the delivery and event, the "
    "attempt number, its outcome, the receiver's status, the time it took and the error if any.",
    responses=answers(200, "A page of attempts", AttemptList, examples.ATTEMPTS),
)
def list_deliveries(
    hook_id: HookId,
    limit: Limit = 50,
    cursor: Cursor = None,
    outcome: OutcomeFilter = None,
    type: Type = None,
    failed_only: FailedOnly = False,
) -> AttemptList:
    return service().attempts(
        account(router),
        hook_id,
        limit=limit,
        cursor=cursor,
        outcome=outcome,
        event_type=type,
        failed_only=failed_only,
    )


@router.post(
    "/hooks/<hook_id>/replay",
    summary="Deliver failed deliveries again",
    description="Queues again every delivery to this hook that failed for good (its retries spent), "
    "all of them or those that failed between `since` and `until`. Each keeps its `webhook-id`, so "
    "receivers that de-duplicate see it once.",
    responses=answers(202, "Queued again", ReplayResult, examples.REPLAYED),
)
def replay(
    hook_id: HookId,
    window: Annotated[
        ReplayIn | None, Body(openapi_examples=request_example("One day's failures", examples.REPLAY_IN))
    ] = None,
) -> Response[ReplayResult]:
    window = window or ReplayIn()
    result = service().replay(account(router), hook_id, since=window.since, until=window.until)
    return Response(202, content_types.APPLICATION_JSON, result)
