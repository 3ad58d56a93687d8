"""The route producers send platform events to."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from webhooks.api import examples
from webhooks.api.common import account, answers, idempotency_header, request_example, service
from webhooks.api_models import EventsAccepted, EventsIn

router = Router()

EventsKey = Annotated[
    str | None,
    idempotency_header(
        "Send a retried request with the key of the first: each event then keeps the id it got the first "
        "time, and so does each delivery's `webhook-id`, so receivers can drop the repeats"
    ),
]


@router.post(
    "/events",
    summary="Send platform events",
    description="Up to 500 events of the types `click`, `open`, `bounce`, `failure`, `delivery`, "
    "`create`, `update`, `delete`, `unsubscribe`, `abuse`, each with its type's fields (see "
    "`events/platform_events.json`). All are checked first: one invalid event refuses the batch and "
    "queues nothing. Each accepted event goes to every active hook of the account subscribed to its type "
    "(and its database/collection).",
    responses=answers(202, "Queued for delivery", EventsAccepted, examples.EVENTS_ACCEPTED),
)
def ingest_events(
    batch: Annotated[
        EventsIn, Body(openapi_examples=request_example("A click and an open", examples.EVENTS_IN))
    ],
    idempotency_key: EventsKey = None,
) -> Response[EventsAccepted]:
    event_ids = service().ingest(account(router), batch.events, idempotency_key)
    return Response(
        202, content_types.APPLICATION_JSON, EventsAccepted(accepted=len(event_ids), event_ids=event_ids)
    )
