"""The route producers send platform events to."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from webhooks.api.common import ERRORS, account, idempotency_header, service
from webhooks.api_models import EventsAccepted, EventsIn

router = Router()

EventsKey = Annotated[
    str | None,
    idempotency_header(
        "Send a retried request with the key of the first: each event then keeps the id it got the first "
        "time, and so does each delivery's `webhook-id`, so receivers can drop the repeats"
    ),
]


@router.post("/events", responses={202: {"description": "Queued for delivery"}, **ERRORS})
def ingest_events(batch: EventsIn, idempotency_key: EventsKey = None) -> Response[EventsAccepted]:
    event_ids = service().ingest(account(router), batch.events, idempotency_key)
    return Response(
        202, content_types.APPLICATION_JSON, EventsAccepted(accepted=len(event_ids), event_ids=event_ids)
    )
