# The FastAPI peer: the protocol subset of bench/peers/PROTOCOL.md on one WebSocket at /ws, served by uvicorn.
"""What a Python team would build instead of Tidings for the benchmark's job, written as FastAPI advises.

One WebSocket endpoint at /ws answers a connection's messages one after another, so replies leave in request
order. Requests are checked with pydantic, tokens with PyJWT (HS256), and orders live in SQLite ($DATA_DIR/peer.db,
WAL journal, synchronous=FULL). A create is acknowledged only after the transaction that stores the order and its
event has committed; the event is then serialized once and the same text is queued to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict, TypeVar

import jwt
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.websockets import WebSocketDisconnected

from store import ORDER, Store, dumps, now_ms

# The connect reply's parameters, as PROTOCOL.md fixes them.
PROTOCOL_VERSION = "1.0"
HEARTBEAT = {"pingIntervalMs": 25000, "idleTimeoutMs": 60000}

# Pushes that may wait for one connection, as in Tidings (`limits.outbound_queue`): a subscriber that lets more pile
# up is a slow consumer, dropped from the fan-out and closed with 4001, so that it never delays the others and the
# server never buffers without bound.
OUTBOUND_QUEUE = 4096
SLOW_CONSUMER_CLOSE = 4001

def message(kind: str, payload: dict[str, Any], request_id: str | None = None) -> str:
    """One protocol message as text; a reply carries its request's requestId, a push carries none."""
    envelope: dict[str, Any] = {"type": kind, "timestamp": now_ms()}
    if request_id is not None:
        envelope["requestId"] = request_id
    envelope["payload"] = payload
    return dumps(envelope)


# ---------------------------------------------------------------------------------------------------------------
# Messages, checked with pydantic.
# ---------------------------------------------------------------------------------------------------------------

RequestId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[ -~]+$")]


class Envelope(BaseModel):
    """Every message: `{type, timestamp, requestId?, payload}`; unknown fields are ignored, as the protocol says."""

    type: Annotated[str, Field(strict=True)]
    timestamp: Annotated[float, Field(strict=True, ge=0, le=2**53 - 1)]
    requestId: RequestId | None = None
    payload: dict[str, Any]


class ConnectPayload(BaseModel):
    protocolVersion: Annotated[str, Field(strict=True)]


class AuthPayload(BaseModel):
    token: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=8192)]


class OrderData(BaseModel):
    """An order's data, checked as far as the benchmark needs and as Tidings' default `order` schema says.

    Other fields are kept, since that schema allows them; a missing status defaults to pending, as there.
    """

    model_config = ConfigDict(extra="allow")

    productId: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
    quantity: Annotated[int, Field(strict=True, ge=1)]
    totalAmount: Annotated[float, Field(strict=True, ge=0)]
    status: Literal["pending", "paid", "shipped", "cancelled"] = "pending"


class CreatePayload(BaseModel):
    resourceType: Annotated[str, Field(strict=True)]
    # Kept as a plain object here, so that an unknown type is NOT_FOUND before its data is judged.
    data: dict[str, Any]


class ReadPayload(BaseModel):
    resourceType: Annotated[str, Field(strict=True)]
    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class SubscribePayload(BaseModel):
    topic: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class ErrorEntry(TypedDict):
    pointer: str
    reason: str


def error_entries(exc: ValidationError, prefix: str) -> list[ErrorEntry]:
    """pydantic's errors as the protocol's `details.errors`: a JSON Pointer into the message and a reason."""
    entries: list[ErrorEntry] = []
    for error in exc.errors(include_url=False):
        pointer = prefix + "".join(f"/{part}" for part in error["loc"])
        entries.append({"pointer": pointer, "reason": error["msg"]})
    return entries


class ProtocolError(Exception):
    """A request that fails: answered with `error` (or `auth_failed` for a rejected token)."""

    def __init__(self, code: str, text: str, details: dict[str, Any] | None = None, reply: str = "error") -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.details = details
        self.reply = reply

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"code": self.code, "message": self.text}
        if self.details is not None:
            payload["details"] = self.details
        return payload

    @classmethod
    def invalid_params(cls, exc: ValidationError, prefix: str, what: str) -> ProtocolError:
        entries = error_entries(exc, prefix)
        first = entries[0]
        more = f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""
        text = f"invalid {what} payload: {first['pointer']} {first['reason']}{more}"
        return cls("INVALID_PARAMS", text, {"errors": entries})


# ---------------------------------------------------------------------------------------------------------------
# The fan-out.
# ---------------------------------------------------------------------------------------------------------------


class Hub:
    """The subscribers of `order`, and the number of the last event published to them."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.subscribers: set[Session] = set()

    def publish(self, event: dict[str, Any]) -> None:
        """Serializes the event once and queues the same text to every subscriber, without waiting for any.

        Awaiting each subscriber's send in turn, as FastAPI's chat example does, would let one slow reader stall
        the publisher and every other subscriber; a bounded queue per subscriber, drained by its own task, is the
        per-client queue that the websockets library's guide to broadcasting describes instead.
        """
        self.seq = event["seq"]
        if not self.subscribers:
            return
        text = message("event", event)
        for session in tuple(self.subscribers):
            session.push(text)


# ---------------------------------------------------------------------------------------------------------------
# One connection.
# ---------------------------------------------------------------------------------------------------------------


class Session:
    """One WebSocket connection: its user once signed in, and its outbound queue once subscribed."""

    def __init__(self, websocket: WebSocket, store: Store, hub: Hub, secret: str) -> None:
        self.websocket = websocket
        self.store = store
        self.hub = hub
        self.secret = secret
        self.session_id = f"s-{uuid.uuid4().hex[:12]}"
        self.user_id: str | None = None
        self.outbox: asyncio.Queue[str] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Answers messages one at a time until the client goes, so replies leave in request order."""
        websocket = self.websocket
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                return
            text = received.get("text")
            if text is None:
                # The protocol speaks text frames only; a binary frame is refused and the connection stays open.
                reply: str | None = message(
                    "error", {"code": "INVALID_MESSAGE", "message": "messages are JSON in text frames"}
                )
            else:
                reply = await self.handle(text)
            if reply is not None:
                await websocket.send_text(reply)
            if self.outbox is not None and self.writer is None:
                # A subscription has just been answered: its events may flow now, after the reply.
                self.writer = asyncio.create_task(self.write_events())

    async def handle(self, text: str) -> str | None:
        """The reply to one message, or None for the messages that get none."""
        try:
            envelope = Envelope.model_validate_json(text)
        except ValidationError as exc:
            return invalid_message(text, exc)
        handler = HANDLERS.get(envelope.type)
        try:
            if handler is None:
                raise unsupported(envelope.type)
            result = await handler(self, envelope.payload)
        except ProtocolError as error:
            return message(error.reply, error.payload(), envelope.requestId)
        if result is None:
            return None
        kind, payload = result
        return message(kind, payload, envelope.requestId)

    def signed_in(self) -> str:
        if self.user_id is None:
            raise ProtocolError("UNAUTHORIZED", "send auth first")
        return self.user_id

    # Handlers: each takes the payload and returns the reply's type and payload, or None for no reply.

    async def on_connect(self, payload: dict[str, Any]) -> Reply:
        request = validate(ConnectPayload, payload, "connect")
        if request.protocolVersion.split(".")[0] != "1":
            raise ProtocolError(
                "UNSUPPORTED_VERSION",
                f"protocol version {request.protocolVersion} is not supported",
                {"requested": request.protocolVersion, "supported": [PROTOCOL_VERSION]},
            )
        return "connect", {"protocolVersion": PROTOCOL_VERSION, "sessionId": self.session_id, "heartbeat": HEARTBEAT}

    async def on_auth(self, payload: dict[str, Any]) -> Reply:
        request = validate(AuthPayload, payload, "auth")
        try:
            claims = jwt.decode(
                request.token, self.secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
            )
        except jwt.InvalidTokenError as exc:
            raise auth_failed(exc) from None
        user_id = claims["sub"]
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise ProtocolError(
                "UNAUTHORIZED", "roles must be a list of strings", {"reason": "malformed"}, "auth_failed"
            )
        if self.user_id is not None and user_id != self.user_id:
            # A connection belongs to one user for its whole life; a token for another changes nothing.
            raise ProtocolError(
                "UNAUTHORIZED", "the token is for another user", {"reason": "user_change"}, "auth_failed"
            )
        self.user_id = user_id
        # exp is Unix seconds and may carry a fraction; expiresAt is whole milliseconds.
        return "auth_success", {"userId": user_id, "roles": roles, "expiresAt": int(claims["exp"] * 1000)}

    async def on_ping(self, payload: dict[str, Any]) -> Reply:
        return "pong", {}

    async def on_pong(self, payload: dict[str, Any]) -> None:
        # An answer to a ping, not a request: no reply.
        return None

    async def on_disconnect(self, payload: dict[str, Any]) -> None:
        # The client leaves: close at once, with no reply.
        await self.websocket.close(1000)
        return None

    async def on_create(self, payload: dict[str, Any]) -> Reply:
        user_id = self.signed_in()
        request = validate(CreatePayload, payload, "create")
        if request.resourceType != ORDER:
            raise ProtocolError("NOT_FOUND", f"no resource type {request.resourceType}")
        try:
            data = OrderData.model_validate(request.data).model_dump()
        except ValidationError as exc:
            raise ProtocolError.invalid_params(exc, "/payload/data", "create") from None
        try:
            resource, event = await self.store.create_order(user_id, data)
        except sqlite3.Error as exc:
            raise ProtocolError("UNAVAILABLE", f"storage failed: {exc}") from None
        # No await between the commit coming back and the publication: see Store on why that keeps seq order.
        self.hub.publish(event)
        return "create", resource

    async def on_read(self, payload: dict[str, Any]) -> Reply:
        self.signed_in()
        request = validate(ReadPayload, payload, "read")
        if request.resourceType != ORDER:
            raise ProtocolError("NOT_FOUND", f"no resource type {request.resourceType}")
        try:
            resource = await self.store.read(request.resourceType, request.id)
        except sqlite3.Error as exc:
            raise ProtocolError("UNAVAILABLE", f"storage failed: {exc}") from None
        if resource is None:
            raise ProtocolError("NOT_FOUND", f"no {request.resourceType} {request.id}")
        return "read", resource

    async def on_subscribe(self, payload: dict[str, Any]) -> Reply:
        self.signed_in()
        request = validate(SubscribePayload, payload, "subscribe")
        if request.topic != ORDER:
            raise ProtocolError("NOT_FOUND", f"no topic {request.topic}")
        if self.closing is not None:
            raise ProtocolError("UNAVAILABLE", "this connection is being closed as a slow consumer")
        if self.outbox is not None:
            raise ProtocolError("CONFLICT", "already subscribed to order", {"subscriptionId": ORDER})
        # Joining and reading seq happen with no await between them, so every event numbered above the seq in the
        # reply reaches this queue. The queue's writer starts once the reply is sent, so the reply comes first.
        self.outbox = asyncio.Queue(OUTBOUND_QUEUE)
        self.hub.subscribers.add(self)
        return "subscribe", {"subscriptionId": ORDER, "topic": ORDER, "seq": self.hub.seq}

    # The fan-out's side of the session.

    def push(self, text: str) -> None:
        """Queues an event for this subscriber; one that has let the queue fill up is dropped as a slow consumer."""
        assert self.outbox is not None
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.drop_slow_consumer()

    async def write_events(self) -> None:
        """Sends this subscriber's queued events in order; only this task waits when its socket is full."""
        assert self.outbox is not None
        try:
            while True:
                text = await self.outbox.get()
                await self.websocket.send_text(text)
        except (WebSocketDisconnect, WebSocketDisconnected, OSError):
            # The send failed: the client is gone or the socket is closing. Drop it from the fan-out.
            self.leave()

    def drop_slow_consumer(self) -> None:
        self.leave()
        if self.closing is None:
            self.closing = asyncio.create_task(self.close_slow_consumer())

    async def close_slow_consumer(self) -> None:
        # The close frame waits behind what the socket already holds, as in any server that does not reset the
        # connection; meanwhile the connection gets no more events and its queue is freed.
        reason = "slow consumer"
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected, OSError):
            await self.websocket.send_text(
                message("disconnect", {"code": SLOW_CONSUMER_CLOSE, "reason": reason, "reconnect": True})
            )
            await self.websocket.close(SLOW_CONSUMER_CLOSE, reason)

    def leave(self) -> None:
        """Leaves the fan-out and frees what was queued."""
        self.hub.subscribers.discard(self)
        self.outbox = None
        writer, self.writer = self.writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()


Reply = tuple[str, dict[str, Any]]
Handler = Callable[[Session, dict[str, Any]], Awaitable[Reply | None]]

HANDLERS: dict[str, Handler] = {
    "connect": Session.on_connect,
    "auth": Session.on_auth,
    "ping": Session.on_ping,
    "pong": Session.on_pong,
    "disconnect": Session.on_disconnect,
    "create": Session.on_create,
    "read": Session.on_read,
    "subscribe": Session.on_subscribe,
}

# Types of protocol v1 that the benchmark does not use; they are refused rather than half served.
NOT_SERVED = {"update", "delete", "unsubscribe"}


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], payload: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ProtocolError.invalid_params(exc, "/payload", what) from None


def unsupported(kind: str) -> ProtocolError:
    text = f"{kind} is not served by this peer" if kind in NOT_SERVED else f"unknown message type {kind}"
    return ProtocolError("UNSUPPORTED_TYPE", text, {"type": kind})


def invalid_message(text: str, exc: ValidationError) -> str:
    """The `error` for a message that is not a valid envelope, echoing its requestId when that one is valid."""
    request_id = None
    try:
        raw = json.loads(text)
        if isinstance(raw, dict):
            candidate = raw.get("requestId")
            if isinstance(candidate, str) and 1 <= len(candidate) <= 128 and candidate.isascii():
                request_id = candidate
    except ValueError:
        pass
    entries = error_entries(exc, "")
    first = entries[0]
    text = f"invalid message: {first['pointer'] or 'the message'} {first['reason']}"
    return message("error", {"code": "INVALID_MESSAGE", "message": text, "details": {"errors": entries}}, request_id)


# Why PyJWT refused a token, in the protocol's words (`details.reason` of auth_failed).
AUTH_REASONS: list[tuple[type[jwt.InvalidTokenError], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
]


def auth_failed(exc: jwt.InvalidTokenError) -> ProtocolError:
    reason = next((name for kind, name in AUTH_REASONS if isinstance(exc, kind)), "malformed")
    # PROTOCOL.md answers a bad signature and an expired token alike, with UNAUTHORIZED.
    return ProtocolError("UNAUTHORIZED", f"the token was rejected: {exc}", {"reason": reason}, "auth_failed")


# ---------------------------------------------------------------------------------------------------------------
# The application.
# ---------------------------------------------------------------------------------------------------------------


async def announce_when_listening(port: int) -> None:
    """Prints the line the benchmark waits for, once the port accepts connections.

    A lifespan's startup runs before uvicorn binds its socket, so printing there would come too early: this task
    starts in the lifespan and connects to the port until that works.
    """
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        break
    print(f"listening on ws://127.0.0.1:{port}/ws", flush=True)


class State(TypedDict):
    store: Store
    hub: Hub
    secret: str


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    """Opens the database before the server takes connections, and closes it after the last one."""
    try:
        secret = os.environ["TIDINGS_AUTH__SECRET"]
        data_dir = Path(os.environ["DATA_DIR"])
        port = int(os.environ["PORT"])
    except (KeyError, ValueError) as exc:
        sys.exit(f"the FastAPI peer needs PORT, DATA_DIR and TIDINGS_AUTH__SECRET: {exc!r}")
    store = Store(data_dir / "peer.db")
    seq = await store.open()
    announcer = asyncio.create_task(announce_when_listening(port))
    try:
        yield {"store": store, "hub": Hub(seq), "secret": secret}
    finally:
        announcer.cancel()
        await store.close()


# The peer serves one WebSocket and no HTTP API, so the generated OpenAPI schema and its docs pages are turned off.
app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    session = Session(websocket, websocket.state.store, websocket.state.hub, websocket.state.secret)
    try:
        await session.serve()
    except (WebSocketDisconnect, WebSocketDisconnected):
        # The client went away while a reply was being sent: nothing to answer any more.
        pass
    finally:
        session.leave()
