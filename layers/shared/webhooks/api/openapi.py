"""The OpenAPI document of the API, with what the resolver cannot know added."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

UNAUTHORIZED: dict[str, Any] = {
    "description": "Missing or unknown bearer token (answered by API Gateway's authorizer)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def document(app: APIGatewayRestResolver) -> str:
    # Imported here: the OpenAPI models take ~300 ms to import, and only this route needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    openapi = json.loads(
        app.get_openapi_json_schema(
            title="Webhooks",
            version="1.0.0",
            description="Register URLs for mail and profile events; events are POSTed to them, signed.",
            security_schemes={"bearer": HTTPBearer()},
            security=[{"bearer": []}],
        )
    )
    for operations in openapi["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            # What the resolver cannot know: a 204 has no body, and the authorizer answers 401 first.
            if "204" in responses:
                responses["204"].pop("content", None)
            responses["401"] = UNAUTHORIZED
    return json.dumps(openapi)
