"""API Gateway (REST) in-process: route matching, the TOKEN authorizer, the proxy event shape."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.lambda_router import Context
from devstack.template import AWS_ACCOUNT, REGION, ApiRoute, Stack

API_ID = "local"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


class Gateway:
    def __init__(self, stack: Stack, stage: str | None = None) -> None:
        self.stack = stack
        self.stage = stage or stack.parameters.get("Stage", "dev")
        functions = stack.functions()
        self.handlers = {logical_id: f.load() for logical_id, f in functions.items()}
        self.names = {logical_id: f.name for logical_id, f in functions.items()}
        self.authorizer = stack.authorizer_function()
        self.routes = [(route, _pattern(route.path)) for route in stack.api_routes()]
        self.responses = _gateway_responses(stack)

    def _match(self, method: str, path: str) -> tuple[ApiRoute | None, dict[str, str], bool]:
        path_known = False
        for route, pattern in self.routes:
            match = pattern.match(path)
            if match:
                path_known = True
                if route.method == method:
                    return route, match.groupdict(), True
        return None, {}, path_known

    def methods(self, path: str) -> list[str]:
        """The methods the API has for `path`."""
        return sorted({route.method for route, pattern in self.routes if pattern.match(path)})

    def _authorize(self, headers: dict[str, str], method: str, path: str) -> dict[str, Any] | None:
        token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        if not token:
            return None
        event = {
            "type": "TOKEN",
            "authorizationToken": token,
            "methodArn": f"arn:aws:execute-api:{REGION}:{AWS_ACCOUNT}:{API_ID}/{self.stage}/{method}{path}",
        }
        try:
            policy = self.handlers[self.authorizer](event, Context(self.names[self.authorizer]))
        except Exception as exc:
            # "Unauthorized" is how a TOKEN authorizer says no; anything else is a bug worth seeing.
            if str(exc) != "Unauthorized":
                logger.exception("the authorizer failed")
            return None
        statement = policy["policyDocument"]["Statement"][0]
        if statement["Effect"] != "Allow":
            return None
        return {"principalId": policy["principalId"], **policy.get("context", {})}

    def handle(
        self, method: str, path: str, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Answer:
        route, params, path_known = self._match(method, path)
        if route is None:
            if not path_known:
                return _json_error(404, "not_found", f"no route {method} {path}")
            allowed = ", ".join(self.methods(path))
            answer = _json_error(405, "method_not_allowed", f"no route {method} {path}; it takes {allowed}")
            return Answer(answer.status, {**answer.headers, "Allow": allowed}, answer.body)
        authorizer: dict[str, Any] | None = None
        if route.authorized:
            authorizer = self._authorize(headers, method, path)
            if authorizer is None:
                return self.responses.get("UNAUTHORIZED") or _json_error(
                    401, "unauthorized", "send Authorization: Bearer <token>"
                )
        text_body: str | None
        try:
            text_body, is_base64 = (body.decode(), False) if body else (None, False)
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "body": text_body,
            "isBase64Encoded": is_base64,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "accountId": AWS_ACCOUNT,
                "apiId": API_ID,
                "identity": {"sourceIp": "127.0.0.1"},
                "authorizer": authorizer,
            },
        }
        try:
            result = self.handlers[route.function](event, Context(self.names[route.function]))
        except Exception:
            logger.exception("%s failed on %s %s", route.function, method, path)
            return _json_error(502, "internal", "the function failed (see the local stack's log)")
        out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(str(v) for v in values)
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return Answer(int(result.get("statusCode", 200)), out_headers, data)


def _gateway_responses(stack: Stack) -> dict[str, Answer]:
    """The API's static GatewayResponses (those whose JSON template uses no $context variable)."""
    answers: dict[str, Answer] = {}
    for props in stack.of_type("AWS::Serverless::Api").values():
        for kind, response in props.get("GatewayResponses", {}).items():
            body = response.get("ResponseTemplates", {}).get("application/json")
            if "StatusCode" in response and body and "$context" not in body:
                status = int(stack.resolve(response["StatusCode"]))
                answers[kind] = Answer(status, {"Content-Type": "application/json"}, body.encode())
    return answers


def _json_error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"error": {"code": code, "message": message, "fields": []}}).encode()
    return Answer(status, {"Content-Type": "application/json"}, body)
