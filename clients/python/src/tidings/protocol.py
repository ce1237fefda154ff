"""The Tidings protocol v1 for clients: the server decoder, error and close codes, and the reconnection rules."""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .models.server import (
    auth_failed,
    auth_success,
    batch,
    connect,
    create,
    delete,
    disconnect,
    error,
    event,
    notification,
    ping,
    pong,
    read,
    subscribe,
    unsubscribe,
    update,
)

#: The protocol version this client speaks, sent in `connect` (docs/protocol.md, section 15).
PROTOCOL_VERSION = "1.1"

#: The largest integer on the wire, 2^53-1.
MAX_SAFE = 9007199254740991

#: JSON nested deeper than this is unreadable (docs/protocol.md, section 5).
MAX_DEPTH = 128

#: The model of every message type a server sends, generated from schema/server/.
SERVER_MODELS: dict[str, type[BaseModel]] = {
    "connect": connect.ConnectServerToClient,
    "disconnect": disconnect.DisconnectServerToClient,
    "ping": ping.PingServerToClient,
    "pong": pong.PongServerToClient,
    "auth_success": auth_success.AuthSuccessServerToClient,
    "auth_failed": auth_failed.AuthFailedServerToClient,
    "create": create.CreateServerToClient,
    "read": read.ReadServerToClient,
    "update": update.UpdateServerToClient,
    "delete": delete.DeleteServerToClient,
    "subscribe": subscribe.SubscribeServerToClient,
    "unsubscribe": unsubscribe.UnsubscribeServerToClient,
    "event": event.EventServerToClient,
    "notification": notification.NotificationServerToClient,
    "error": error.ErrorServerToClient,
    # Since 1.2, the reply to a batch; a server sends it only to a client that sent one.
    "batch": batch.BatchServerToClient,
}

#: The message types a client sends; `auth` is the one a server never sends.
CLIENT_TYPES = (
    "connect", "disconnect", "ping", "pong", "auth", "create", "read", "update", "delete", "subscribe", "unsubscribe",
    "batch",
)

#: The error codes of protocol v1 (protocol/codes.json); a test keeps this list equal to that file.
ERROR_CODES = (
    "INVALID_MESSAGE",
    "INVALID_PARAMS",
    "UNSUPPORTED_TYPE",
    "INVALID_STATE",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "LIMIT_EXCEEDED",
    "TOKEN_EXPIRED",
    "UNSUPPORTED_VERSION",
    "UNAVAILABLE",
    "INTERNAL",
)

_REQUEST_ID = re.compile(r"^[ -~]{1,128}$")


def known_error_code(code: str) -> str:
    """The code as this client knows it, or UNKNOWN for a code of a later version (shown like INTERNAL)."""
    return code if code in ERROR_CODES else "UNKNOWN"


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON Pointer into the whole message and a short reason."""

    pointer: str
    reason: str


class TidingsError(Exception):
    """A request that failed: a server `error` or `auth_failed`, an HTTP error, or one of the client's own codes.

    The client's own codes are TIMEOUT (no reply in time), CONNECTION_LOST (the connection closed before the reply
    and the request is not safe to send again), CLOSED (the client was closed or gave up reconnecting) and
    INVALID_REPLY (the server's reply did not decode).
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.request_id = request_id
        #: The HTTP status, for errors of the HTTP API.
        self.status = status

    @property
    def errors(self) -> list[FieldError]:
        """The bad fields of INVALID_PARAMS, INVALID_MESSAGE and FORBIDDEN, or an empty list."""
        found = self.details.get("errors")
        if not isinstance(found, list):
            return []
        return [FieldError(str(e.get("pointer", "")), str(e.get("reason", ""))) for e in found if isinstance(e, dict)]


@dataclass
class Decoded:
    """What decode_server makes of a frame: a reply (it has a requestId), a push (it has none), or an invalid one.

    For a valid message, `message` is the generated model of its type and `raw` the JSON object it was read from,
    with the timestamp in milliseconds. For an invalid one, `code` says which step of section 5 refused it.
    """

    kind: Literal["reply", "push", "invalid"]
    message: BaseModel | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    code: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    type: str | None = None


class _Duplicate(dict):
    """A JSON object that held a key twice; the repeated key is kept to point at it."""

    repeated: str = ""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result and not isinstance(result, _Duplicate):
            result = _Duplicate(result)
            result.repeated = key
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are JavaScript, not JSON (RFC 8259), though Python's json module reads them.
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a value, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _whole_numbers(value: Any) -> Any:
    """A copy in which whole-number floats (10.0) are ints: the spec accepts them wherever an integer goes."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _pointer(value: Any, error: dict[str, Any]) -> str:
    """The JSON Pointer of a pydantic error, found by walking its location through the value.

    A location also holds names of union branches and models, which are not keys of the value; walking the value
    skips them. A missing field is not in the value either: its name ends the pointer.
    """
    parts: list[str] = []
    current = value
    loc = list(error.get("loc", ()))
    for index, step in enumerate(loc):
        if isinstance(current, dict) and isinstance(step, str) and step in current:
            parts.append(_escape(step))
            current = current[step]
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            parts.append(str(step))
            current = current[step]
        elif error.get("type") == "missing" and index == len(loc) - 1 and isinstance(step, str):
            parts.append(_escape(step))
    return "".join(f"/{part}" for part in parts)


def normalize_timestamp(timestamp: float) -> int:
    """A timestamp as the protocol reads it: below 10^11 it is seconds, else milliseconds; rounded to a millisecond."""
    ms = timestamp * 1000 if timestamp < 1e11 else timestamp
    # Half up, as JavaScript's Math.round, rather than Python's rounding half to even.
    return int(math.floor(ms + 0.5))


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but true is no number in JSON.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode_server(text: str | bytes) -> Decoded:
    """Decodes a message from a server in the order of docs/protocol.md, section 5.

    JSON (no NaN, at most 128 levels), an object without a repeated top-level key, the envelope, the type, then the
    payload against the generated model of its type. The first step that fails decides. A valid message comes out
    with its timestamp in milliseconds.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Decoded("invalid", code="INVALID_MESSAGE", errors=[FieldError("", "is not UTF-8")])
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return Decoded("invalid", code="INVALID_MESSAGE", errors=[FieldError("", "is not JSON")])
    if not isinstance(value, dict):
        return Decoded("invalid", code="INVALID_MESSAGE", errors=[FieldError("", "must be an object")])
    request_id = value.get("requestId")
    echoed = request_id if isinstance(request_id, str) and _REQUEST_ID.match(request_id) else None
    if _depth(value) > MAX_DEPTH:
        return Decoded("invalid", code="INVALID_MESSAGE", errors=[FieldError("", "nests too deeply")], request_id=echoed)
    if isinstance(value, _Duplicate):
        pointer = f"/{_escape(value.repeated)}"
        return Decoded("invalid", code="INVALID_MESSAGE", errors=[FieldError(pointer, "appears twice")], request_id=echoed)

    errors: list[FieldError] = []
    kind = value.get("type")
    if not isinstance(kind, str):
        errors.append(FieldError("/type", "must be a string"))
    timestamp = value.get("timestamp")
    if not _is_number(timestamp) or not math.isfinite(timestamp):
        errors.append(FieldError("/timestamp", "must be a number"))
    elif timestamp < 0 or timestamp > MAX_SAFE:
        errors.append(FieldError("/timestamp", "must be from 0 to 2^53-1"))
    if "requestId" in value and echoed is None:
        errors.append(FieldError("/requestId", "must be 1 to 128 printable ASCII characters"))
    if not isinstance(value.get("payload"), dict):
        errors.append(FieldError("/payload", "must be an object"))
    if errors:
        return Decoded("invalid", code="INVALID_MESSAGE", errors=errors, request_id=echoed)

    model = SERVER_MODELS.get(kind)
    if model is None:
        return Decoded("invalid", code="UNSUPPORTED_TYPE", request_id=echoed, type=kind)
    raw = _whole_numbers(dict(value))
    try:
        message = model.model_validate(raw)
    except ValidationError as failure:
        seen: dict[str, FieldError] = {}
        for item in failure.errors():
            pointer = _pointer(raw, dict(item))
            seen.setdefault(pointer, FieldError(pointer, str(item.get("msg", "is invalid"))))
        return Decoded("invalid", code="INVALID_PARAMS", errors=list(seen.values()), request_id=echoed, type=kind)
    raw["timestamp"] = normalize_timestamp(raw["timestamp"])
    message.timestamp = raw["timestamp"]
    if echoed is None:
        return Decoded("push", message=message, raw=raw, type=kind)
    return Decoded("reply", message=message, raw=raw, request_id=echoed, type=kind)


def is_client_message(value: Any) -> bool:
    """A light structural check that a value is a client message: a known client type, a valid envelope and an
    object payload. The payload's fields are the server's to check (the models in tidings.models.client can)."""
    if not isinstance(value, dict):
        return False
    timestamp, request_id = value.get("timestamp"), value.get("requestId", "-")
    return (
        value.get("type") in CLIENT_TYPES
        and _is_number(timestamp)
        and 0 <= timestamp <= MAX_SAFE
        and isinstance(request_id, str)
        and _REQUEST_ID.match(request_id) is not None
        and isinstance(value.get("payload"), dict)
    )


# Standard WebSocket codes after which a client does not reconnect (docs/protocol.md, section 11): normal, protocol
# error, unsupported data, invalid payload, policy violation, message too big, mandatory extension.
_FINAL_STANDARD_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})


def should_reconnect(code: int) -> bool:
    """Whether to reconnect after a close with this code, by docs/protocol.md, section 11.

    4000-4499: yes; 4500-4999: no; below 4000, no for 1000, 1002, 1003, 1007, 1008, 1009 and 1010 and yes for any
    other (1001, 1006 and 1011 included). A server's `disconnect.reconnect` overrides this; the client does that.
    """
    # Tidings' own codes fall in two ranges, so that a client knows what to do with a code it has never seen.
    if 4000 <= code <= 4499:
        return True
    if 4500 <= code <= 4999:
        return False
    return code not in _FINAL_STANDARD_CODES


def backoff_delay(attempt: int, base: float, cap: float, rand: Any = random.random) -> float:
    """The wait before reconnection attempt `attempt` (1, 2, ...): half the capped exponential delay plus a random
    part of the other half ("equal jitter"), so that clients cut off together do not all come back together."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + rand() * (ceiling / 2)
