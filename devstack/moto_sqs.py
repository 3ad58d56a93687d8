"""moto's SQS without its per-message scans, so that the local stack carries a flood.

moto keeps a queue as a list and walks all of it on calls that need one message or one number:
`send_message` computes every `Queue.attributes` (three counts over all messages) to read one
flag; `receive_message` asks `get_queue_attributes` for the retention period for every message it
returns (the same counts, twice); `delete_message` and `change_message_visibility` compare the
receipt handle with every message's whole handle history. With 2,000 queued deliveries a
SendMessageBatch took ~0.3 s and a ReceiveMessage ~0.8 s.

Patched here, and nothing else about moto's SQS: attributes are computed one at a time when
read, the visible messages are found lazily (a receive of 10 looks at the messages before the
10th visible one, not at all of them), and receipt handles are found in an index. Visibility,
receive counts, redrive to the dead-letter queue, delays and message groups stay moto's own
code (tests/unit/test_moto_sqs.py pins them).

One behaviour is added, AWS's own: SQS fair queues. On AWS, a standard queue whose messages carry
a MessageGroupId keeps one group's backlog from raising the others' dwell time; moto hands out
the oldest visible messages whatever their group. Here a receive takes the groups in turn, so the
local stack shows what AWS does when one hook is flooded and its neighbours are not.

`examined` counts the messages looked at, so a test can show the work per call without timing it.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from moto.core.utils import camelcase_to_underscores, unix_time_millis
from moto.sqs import models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

_originals: dict[tuple[type, str], Any] = {}
_by_handle: weakref.WeakValueDictionary[str, models.Message] = weakref.WeakValueDictionary()
_lock = threading.Lock()


class Counter:
    """Messages looked at by the patched paths (a count of work done, for tests and the bench)."""

    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int) -> None:
        self.value += n


examined = Counter()


class _Attributes(Mapping[str, Any]):
    """`Queue.attributes` as moto builds it, but each value computed when read."""

    def __init__(self, queue: models.Queue) -> None:
        self.queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names += queue.KMS_ATTRIBUTES
        self.names = names

    def __getitem__(self, name: str) -> Any:
        if name not in self.names:
            raise KeyError(name)
        queue = self.queue
        value = getattr(queue, camelcase_to_underscores(name))
        if name == "RedrivePolicy" and queue.redrive_policy:  # type: ignore[attr-defined]
            value = json.dumps(queue.redrive_policy)  # type: ignore[attr-defined]
        if isinstance(value, bool):
            value = str(value).lower()
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class _Visible:
    """`Queue.messages` (visible and not delayed), found as the caller iterates, taking the message
    groups in turn as SQS fair queues do: one group's backlog does not hold up the others'."""

    def __init__(self, queue: models.Queue) -> None:
        self.queue = queue

    def __iter__(self) -> Iterator[models.Message]:
        queue = self.queue
        looked = 0
        lines = []
        with _lock:
            groups = _groups(queue)
            for group, line in list(groups.items()):
                # Entries of messages deleted or moved to another queue are dropped as they reach the head.
                while line and _home.get(line[0]) is not queue:
                    line.popleft()
                if line:
                    lines.append(iter(list(line)))
                else:
                    del groups[group]
        try:
            while lines:
                for line in list(lines):
                    for message in line:
                        looked += 1
                        if _home.get(message) is not queue:
                            continue
                        # The same comparisons as Message.visible and Message.delayed.
                        now = unix_time_millis()
                        if now > message.visible_at and not now < message.delayed_until:
                            yield message
                            break
                    else:
                        lines.remove(line)
        finally:
            examined.add(looked)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


# The queue a message is in now (none once deleted), and each queue's messages by group, in order.
# Kept beside moto's objects, not on them: moto deep-copies messages it hands out.
_home: weakref.WeakKeyDictionary[models.Message, models.Queue] = weakref.WeakKeyDictionary()
_by_group: weakref.WeakKeyDictionary[models.Queue, dict[str | None, deque[models.Message]]] = (
    weakref.WeakKeyDictionary()
)


def _groups(queue: models.Queue) -> dict[str | None, deque[models.Message]]:
    groups = _by_group.get(queue)
    if groups is None:
        groups = _by_group[queue] = {}
        for message in queue._messages:
            _home[message] = queue
            groups.setdefault(message.group_id, deque()).append(message)
    return groups


def _add_message(self: models.Queue, message: models.Message) -> None:
    with _lock:
        _home[message] = self
        _groups(self).setdefault(message.group_id, deque()).append(message)
    _originals[(models.Queue, "add_message")](self, message)


def _attributes(self: models.Queue) -> Mapping[str, Any]:
    return _Attributes(self)


def _messages(self: models.Queue) -> _Visible:
    return _Visible(self)


def _mark_received(self: models.Message, visibility_timeout: int | None = None) -> None:
    _originals[(models.Message, "mark_received")](self, visibility_timeout)
    with _lock:
        for handle in self.all_receipt_handles:
            if handle is not None:
                _by_handle[handle] = self


def _holder(queue: models.Queue, receipt_handle: str) -> models.Message | None:
    """The message of this queue that had this receipt handle, if any."""
    message = _by_handle.get(receipt_handle)
    if message is None:
        return None
    # Messages compare by identity: this scan runs in C, no Python code per message.
    return message if message in queue._messages else None


def _delete_message(self: models.Queue, receipt_handle: str) -> None:
    if receipt_handle in self.deleted_messages:
        return
    message = _holder(self, receipt_handle)
    if message is None:
        raise ReceiptHandleIsInvalid()
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
    self._messages.remove(message)
    _home.pop(message, None)


def _change_message_visibility(
    self: models.SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    queue = self.get_queue(queue_name)
    message = _holder(queue, receipt_handle)
    if message is None:
        raise ReceiptHandleIsInvalid
    # From here on, moto's own checks and effects.
    given = unix_time_millis() + int(visibility_timeout) * 1000
    if given - message.sent_timestamp > 43200 * 1000:  # type: ignore[operator]
        raise InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        )
    message.change_visibility(visibility_timeout)
    if message.visible and message in queue.pending_messages:
        queue.pending_messages.remove(message)


def _retention_ok(self: models.SQSBackend, queue_name: str, message: models.Message) -> bool:
    period = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return bool(period + message.sent_timestamp / 1000 > models.unix_time())  # type: ignore[operator]


_PATCHES: list[tuple[type, str, Any]] = [
    (models.Queue, "attributes", property(_attributes)),
    (models.Queue, "messages", property(_messages)),
    (models.Queue, "delete_message", _delete_message),
    (models.Queue, "add_message", _add_message),
    (models.Message, "mark_received", _mark_received),
    (models.SQSBackend, "change_message_visibility", _change_message_visibility),
    (models.SQSBackend, "is_message_valid_based_on_retention_period", _retention_ok),
]


def install() -> None:
    """Patches moto's SQS classes in this process (idempotent)."""
    for owner, name, replacement in _PATCHES:
        if (owner, name) not in _originals:
            _originals[(owner, name)] = owner.__dict__[name]
            setattr(owner, name, replacement)


def uninstall() -> None:
    """Puts moto's own code back (tests compare the two)."""
    for (owner, name), original in list(_originals.items()):
        setattr(owner, name, original)
        del _originals[(owner, name)]
