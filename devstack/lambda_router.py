"""Routes moto's Docker-free Lambda invocations (state-machine tasks) to handlers in this process.

With moto's config `{"lambda": {"use_docker": False}}`, every invoke lands in
`LambdaSimpleBackend.invoke`, which would echo the payload back. Patched, it calls the registered
handler and answers as Lambda does: the result as JSON, or an `Unhandled` function error whose
errorType Step Functions matches in Retry/Catch.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda_simple.models import LambdaSimpleBackend

Handler = Callable[[dict[str, Any], Any], Any]

_handlers: dict[str, Handler] = {}
_lock = threading.Lock()


class Context:
    """The parts of Lambda's context object that Powertools and the handlers read."""

    def __init__(self, function_name: str, timeout_seconds: float = 300.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_name(name_or_arn: str) -> str:
    """'name', 'name:qualifier' or 'arn:aws:lambda:region:account:function:name[:qualifier]' -> 'name'."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn.split(":")[0]


def register(name_or_arn: str, handler: Handler) -> None:
    with _lock:
        _handlers[function_name(name_or_arn)] = handler


def forget(name_or_arn: str) -> None:
    """Invokes of this function fail from now on (moto's UnknownFunction), as after a stack is deleted:
    a state machine that outlives its stack can no longer run a handler against what is gone."""
    with _lock:
        _handlers.pop(function_name(name_or_arn), None)


def _invoke(
    self: LambdaSimpleBackend,
    function_name_or_arn: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> bytes:
    name = function_name(function_name_or_arn)
    handler = _handlers.get(name)
    if handler is None:
        raise UnknownFunctionException(function_name_or_arn)
    if isinstance(body, bytes):
        body = body.decode()
    event = json.loads(body) if body else {}
    try:
        result = handler(event, Context(name))
    except Exception as exc:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
    return json.dumps(result).encode()


def install() -> None:
    LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign,assignment]


def scale_state_machine_time(factor: float) -> None:
    """Multiplies every Wait state and Retry interval of moto's interpreter by `factor` (tests only)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * factor)

    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]

    class _ScaledTime:
        def __getattr__(self, item: str) -> Any:
            return getattr(time, item)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(seconds * factor)

    retrier_decl.time = _ScaledTime()  # type: ignore[assignment]
