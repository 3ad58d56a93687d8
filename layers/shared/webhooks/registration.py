"""Registering hooks: create, change, remove, restart validation, rotate secrets.

Every operation is scoped to one account. A hook is written before its validation starts (the
state machine reads it); when the start fails, the write is undone, so no hook waits for a
validation that will never come.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools import Logger
from boto3.dynamodb.conditions import Attr

from webhooks import aws, ids, signing, verification
from webhooks.api_models import HookCreate, HookUpdate, HookView
from webhooks.errors import Conflict, InvalidInput, Unavailable
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus
from webhooks.outbound_policy import OutboundPolicy, UnsafeUrl, check_url
from webhooks.settings import Settings

logger = Logger(child=True)

MAX_PAGE = 100


def validation_input(hook: Hook, schedule: list[int]) -> dict[str, Any]:
    """The state machine's input: which hook, which validation, and the wait before the first check."""
    return {
        "account": hook.account,
        "hook_id": hook.id,
        "validation_id": hook.validation_id,
        "attempt": 0,
        "wait_seconds": schedule[0],
    }


class Registry:
    def __init__(self, settings: Settings, store: HookStore | None = None) -> None:
        self.settings = settings
        self.store = store or HookStore(settings.hooks_table)
        self.policy = OutboundPolicy(allow_http=settings.allow_http, allow_private=settings.allow_private)

    def _check_url(self, url: str) -> None:
        """The outbound policy's refusal, as the API's invalid input on the field `url`."""
        try:
            check_url(url, self.policy)
        except UnsafeUrl as exc:
            raise InvalidInput(exc.reason, field="url") from None

    # -- validation -----------------------------------------------------------------------------

    def _start_validation(self, hook: Hook) -> None:
        try:
            aws.client("stepfunctions").start_execution(
                stateMachineArn=self.settings.validation_state_machine_arn,
                name=hook.validation_id,
                input=json.dumps(validation_input(hook, self.settings.validation_schedule)),
            )
        except Exception as exc:
            logger.exception("validation did not start", extra={"hook_id": hook.id})
            raise Unavailable("could not start the URL validation; nothing was changed, try again") from exc

    def _save_and_validate(self, hook: Hook, changes: dict[str, Any]) -> Hook:
        """Saves the change, then starts its validation; undoes the change when the start fails."""
        updated = self.store.save(hook.model_copy(update=changes))
        try:
            self._start_validation(updated)
        except Unavailable:
            self.store.save(hook.model_copy(update={"version": updated.version}))
            raise
        return updated

    def _new_validation(self, hook: Hook) -> dict[str, Any]:
        file = verification.new_file(self.settings.verification_prefix)
        return {
            "status": HookStatus.PENDING_VALIDATION,
            "verification_file": file.file_name,
            "verification_contents": file.contents,
            "validation_id": ids.new_id("val"),
            "validated_at": None,
            "disabled_reason": None,
            "last_check": None,
            "next_check_at": self._first_check_at(),
        }

    def _first_check_at(self) -> int:
        return int(time.time()) + self.settings.validation_schedule[0]

    # -- operations -----------------------------------------------------------------------------

    def create(self, account: str, request: HookCreate, idempotency_key: str | None = None) -> Hook:
        """A new hook, validation started. Under an Idempotency-Key, the hook id comes from the key: the
        same request sent again answers the hook the first one created (secret included) and starts
        nothing; another request under the same key is a conflict."""
        self._check_url(request.url)
        file = verification.new_file(self.settings.verification_prefix)
        fingerprint: str | None = None
        if idempotency_key is None:
            hook_id = ids.new_id("hk")
        else:
            hook_id = ids.keyed_id("hk", account, idempotency_key)
            fingerprint = ids.keyed_id("req", request.model_dump_json())
        hook = Hook(
            account=account,
            id=hook_id,
            request_fingerprint=fingerprint,
            url=request.url,
            events=request.events,
            database=None if request.database is None else str(request.database),
            collection=None if request.collection is None else str(request.collection),
            format=request.format,
            description=request.description,
            rate_limit=request.rate_limit,
            batch_max_events=request.batch.max_events if request.batch else None,
            batch_max_wait=request.batch.max_wait_seconds if request.batch else 0,
            secret=signing.new_secret(),
            verification_file=file.file_name,
            verification_contents=file.contents,
            validation_id=ids.new_id("val"),
            next_check_at=self._first_check_at(),
        )
        if not self.store.create(hook):
            existing = self.store.get(account, hook.id)
            if existing.request_fingerprint != hook.request_fingerprint:
                raise Conflict("this Idempotency-Key was used for another request", field="idempotency-key")
            logger.info("hook create repeated", extra={"hook_id": hook.id, "account": account})
            return existing
        try:
            self._start_validation(hook)
        except Unavailable:
            self.store.delete(account, hook.id)
            raise
        logger.info("hook created", extra={"hook_id": hook.id, "account": account})
        return hook

    def get(self, account: str, hook_id: str) -> Hook:
        return self.store.get(account, hook_id)

    def view(self, account: str, hook_id: str) -> HookView:
        """The hook as GET /hooks/{id} shows it: with how it is served right now."""
        hook = self.store.get(account, hook_id)
        # Imported here: only this route needs the delivery side's pace.
        from webhooks.health import PaceStore

        [pace] = PaceStore(self.settings.rate_limits_table).get_many([(account, hook_id)]).values()
        return HookView.of(hook, pace.view(hook.rate_limit))

    def list(
        self,
        account: str,
        *,
        database: str | None,
        collection: str | None,
        event: str | None,
        limit: int,
        status: str | None = None,
        cursor: str | None,
    ) -> tuple[list[Hook], str | None]:
        condition: Any = None
        for clause in (
            Attr("database").eq(database) if database is not None else None,
            Attr("collection").eq(collection) if collection is not None else None,
            Attr("events").contains(event) if event is not None else None,
            Attr("status").eq(status) if status is not None else None,
        ):
            if clause is not None:
                condition = clause if condition is None else condition & clause
        return self.store.page(
            account, limit=min(limit, MAX_PAGE), cursor=cursor, filter_expression=condition
        )

    def update(self, account: str, hook_id: str, request: HookUpdate) -> Hook:
        hook = self.store.get(account, hook_id)
        changes: dict[str, Any] = request.model_dump(exclude_unset=True, exclude={"status", "batch"})
        if "batch" in request.model_fields_set:
            batch = request.batch
            changes["batch_max_events"] = batch.max_events if batch else None
            changes["batch_max_wait"] = batch.max_wait_seconds if batch else 0
        if (
            changes.get("batch_max_events", hook.batch_max_events)
            and changes.get("format", hook.format) != "json"
        ):
            raise InvalidInput("batching needs format json (a batch is a JSON array)", field="batch")
        for ref in ("database", "collection"):
            if changes.get(ref) is not None:
                changes[ref] = str(changes[ref])
        revalidate = False
        if "url" in changes and changes["url"] != hook.url:
            self._check_url(changes["url"])
            revalidate = True
        if request.status == "disabled":
            changes.update(status=HookStatus.DISABLED, disabled_reason="disabled by the customer")
        elif request.status == "active" and hook.status is not HookStatus.ACTIVE:
            # Resuming a hook whose URL was proven needs no new proof; anything else does.
            if hook.validated_at is not None and not revalidate:
                changes.update(status=HookStatus.ACTIVE, disabled_reason=None, failing_since=None)
            else:
                revalidate = True
        if revalidate:
            changes.update(self._new_validation(hook))
            return self._save_and_validate(hook, changes)
        return self.store.save(hook.model_copy(update=changes))

    def delete(self, account: str, hook_id: str) -> None:
        self.store.delete(account, hook_id)
        logger.info("hook deleted", extra={"hook_id": hook_id, "account": account})

    def restart_validation(self, account: str, hook_id: str) -> Hook:
        hook = self.store.get(account, hook_id)
        if hook.status is HookStatus.ACTIVE:
            raise Conflict("the hook is already validated", field="id")
        # The file the customer already published stays valid: only the validation id changes.
        changes = {
            "status": HookStatus.PENDING_VALIDATION,
            "validation_id": ids.new_id("val"),
            "disabled_reason": None,
        }
        return self._save_and_validate(hook, changes)

    def rotate_secret(self, account: str, hook_id: str) -> Hook:
        hook = self.store.get(account, hook_id)
        return self.store.save(
            hook.model_copy(
                update={
                    "secret": signing.new_secret(),
                    "previous_secret": hook.secret,
                    "previous_secret_expires_at": int(time.time()) + self.settings.secret_grace_seconds,
                }
            )
        )
