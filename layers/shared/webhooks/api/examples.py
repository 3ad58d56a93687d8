"""Examples of what the API takes and answers, for its OpenAPI document and the /docs page.

Plain data, checked against the request and response models by tests/integration/test_api_docs.py, so an
example cannot drift from what the API really does.
"""

from __future__ import annotations

from typing import Any

HOOK_ID = "hk_3kTq9VbXw2PzR7mN"
VERIFICATION = {
    "file_name": "smtpeter-9f2c4e6a0b1d4c3e8a7f6b5d4c3e2a1f.txt",
    "contents": "q7M2xVnR4tYp8LwZ0cKb3HsJ6dFg9AeU1oIi5uEy-Tw",
    "urls": [
        "https://hooks.example.com/dir/smtpeter-9f2c4e6a0b1d4c3e8a7f6b5d4c3e2a1f.txt",
        "https://hooks.example.com/smtpeter-9f2c4e6a0b1d4c3e8a7f6b5d4c3e2a1f.txt",
    ],
}
SECRET = "whsec_MfKQ9r8GKYqXm5Ao3n0sPq1JbZ6Ch7wH4uT2eLd8yRk="

CREATE_HOOK: dict[str, Any] = {
    "url": "https://hooks.example.com/dir/script.php",
    "events": ["click", "open", "bounce"],
    "database": 12,
    "format": "json",
    "description": "CRM sync",
}

HOOK: dict[str, Any] = {
    "id": HOOK_ID,
    "url": "https://hooks.example.com/dir/script.php",
    "events": ["click", "open", "bounce"],
    "database": "12",
    "collection": None,
    "format": "json",
    "description": "CRM sync",
    "status": "pending_validation",
    "disabled_reason": None,
    "rate_limit": None,
    "batch": None,
    "verification": VERIFICATION,
    "last_check": {
        "at": 1795428000,
        "attempt": 1,
        "found": False,
        "locations": [
            {"url": VERIFICATION["urls"][0], "found": False, "status": 404, "problem": "HTTP 404"},
            {"url": VERIFICATION["urls"][1], "found": False, "problem": "connection refused"},
        ],
    },
    "next_check_at": 1795428060,
    "created_at": 1795428000,
    "updated_at": 1795428000,
}

CREATED: dict[str, Any] = {**HOOK, "last_check": None, "next_check_at": 1795428000, "secret": SECRET}

ACTIVE_HOOK: dict[str, Any] = {
    **HOOK,
    "status": "active",
    "last_check": {
        "at": 1795428060,
        "attempt": 2,
        "found": True,
        "locations": [{"url": VERIFICATION["urls"][0], "found": True, "status": 200}],
    },
    "next_check_at": None,
    "updated_at": 1795428060,
}

RESTARTED: dict[str, Any] = {**HOOK, "last_check": None, "next_check_at": 1795428300}

HOOK_LIST: dict[str, Any] = {"hooks": [ACTIVE_HOOK], "next_cursor": None}

UPDATE_HOOK: dict[str, Any] = {"events": ["click", "open"], "rate_limit": 50}

SECRET_VIEW: dict[str, Any] = {"secret": SECRET, "previous_secret_expires_at": None}
ROTATED: dict[str, Any] = {
    "secret": "whsec_Zp3XkT8vLr2Nq5Wm0Yc7Bf4Hj9Sd6Ga1Ue3Io8Ry2Tk=",
    "previous_secret_expires_at": 1795514400,
}

TEST_IN: dict[str, Any] = {"data": {"type": "click", "recipient": "jane@example.com", "test": True}}
TEST_RESULT: dict[str, Any] = {
    "delivery_id": "msg_2Wq8Lm4Zr7Tx1Pk9",
    "status": 200,
    "duration_ms": 87,
    "body": "ok",
    "error": None,
}

ATTEMPTS: dict[str, Any] = {
    "attempts": [
        {
            "delivery_id": "msg_7Hc2Kp9Wq4Zx8Rt1",
            "event_id": "evt_5Nb8Vq2Lm7Tx3Pk6",
            "type": "click",
            "attempt": 2,
            "attempt_of": 8,
            "at": 1795428065.2,
            "attempted_at": "2026-11-23T10:01:05.200Z",
            "outcome": "succeeded",
            "run": 0,
            "status": 200,
            "duration_ms": 112,
        },
        {
            "delivery_id": "msg_7Hc2Kp9Wq4Zx8Rt1",
            "event_id": "evt_5Nb8Vq2Lm7Tx3Pk6",
            "type": "click",
            "attempt": 1,
            "attempt_of": 8,
            "at": 1795428060.4,
            "attempted_at": "2026-11-23T10:01:00.400Z",
            "outcome": "retrying",
            "next_attempt_at": "2026-11-23T10:01:05.200Z",
            "run": 0,
            "status": 503,
            "duration_ms": 40,
            "error": "HTTP 503",
        },
    ],
    "next_cursor": None,
}

REPLAY_IN: dict[str, Any] = {"since": 1795420800, "until": 1795428000}
REPLAYED: dict[str, Any] = {"replayed": 3}

EVENTS_IN: dict[str, Any] = {
    "events": [
        {
            "type": "click",
            "id": "msg-1001",
            "recipient": "jane@example.com",
            "timestamp": "2026-11-23 10:00:00",
            "original": "https://shop.example.com/sale",
            "tags": ["newsletter"],
            "database": 12,
        },
        {
            "type": "open",
            "id": "msg-1001",
            "recipient": "jane@example.com",
            "time": 1795428060,
            "database": 12,
        },
    ]
}
EVENTS_ACCEPTED: dict[str, Any] = {
    "accepted": 2,
    "event_ids": ["evt_5Nb8Vq2Lm7Tx3Pk6", "evt_9Xr4Tz1Wq6Lm2Pk8"],
}
