"""The asyncio WebSocket client: connect and auth, requests by requestId, subscriptions resumed by `since`, notifications."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Literal, Mapping, Sequence

from . import __version__
from .connection import Connection, Lost
from .models.server.batch import OperationResult as BatchResult
from .models.server.batch import Payload as BatchReply
from .models.server.delete import Payload as Deleted
from .models.server.read import Resource, ResourceList
from .presence import Presence
from .protocol import TidingsError
from .subscriptions import NOTIFICATIONS, PRESENCE_PREFIX, Event, Notification, Stream, Subscription, subscription_key

State = Literal["idle", "connecting", "connected", "reconnecting", "closed"]

#: How long a request waits for its reply, and for a connection while the client reconnects, by default.
DEFAULT_REQUEST_TIMEOUT = 10.0

#: How many notifications the client keeps for `client.notifications` until someone takes them.
DEFAULT_NOTIFICATION_BUFFER = 10_000

#: How many notification ids the client remembers to drop a notification that a server pushes again.
SEEN_NOTIFICATIONS = 10_000


class Client:
    """A Tidings client on one WebSocket, reconnected with backoff and jitter when the link or the server fails.

    `url` is the server's WebSocket address (`ws://host:port/ws`), or a function that returns it at each attempt.
    Give `token`, or `get_token`, a function (plain or async) asked for a fresh token at each sign-in and before the
    token expires. After a reconnect the client signs in again, resumes every subscription with `since` (its last
    seq), and sends again the requests that are safe to repeat: reads, creates and batches (with their requestId,
    which the server deduplicates) and updates and deletes that name an `expected_version`.

    `retry_wait(attempt, delay)` replaces the wait between reconnection attempts (by default it sleeps `delay`
    seconds); `max_attempts` bounds the attempts in a row (None: no bound).
    """

    def __init__(
        self,
        url: str | Callable[[], str],
        token: str | None = None,
        *,
        get_token: Callable[[], str | Awaitable[str]] | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = 10.0,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        max_attempts: int | None = None,
        retry_wait: Callable[[int, float], Awaitable[None]] | None = None,
        heartbeat_margin: float = 10.0,
        refresh_before_expiry: float = 60.0,
        notification_buffer: int = DEFAULT_NOTIFICATION_BUFFER,
        client_name: str = "tidings-python",
        logger: logging.Logger | None = None,
    ) -> None:
        if token is None and get_token is None:
            raise ValueError("give a token or get_token")
        self.url = url
        self.token = token
        self.get_token = get_token
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.retry_wait = retry_wait
        self.heartbeat_margin = heartbeat_margin
        self.refresh_before_expiry = refresh_before_expiry
        self.client_info = {"name": client_name, "version": __version__}
        self.logger = logger or logging.getLogger("tidings")
        #: Every notification new to this client, pushed or through a `notifications` subscription, oldest first.
        self.notifications: Stream[Notification] = Stream(maxlen=notification_buffer)
        #: The signed-in user, the server's protocol version and this connection's session id, once connected.
        self.user_id: str | None = None
        self.server_version: str | None = None
        self.session_id: str | None = None
        self._state: State = "idle"
        self._state_handlers: list[Callable[[State], Any]] = []
        self._notification_handlers: list[Callable[[Notification], Any]] = []
        self._state_changed = asyncio.Event()
        self._subscriptions: dict[str, Subscription] = {}
        # What each new connection restores once its subscriptions are resumed: the presence handles' rejoins.
        self._restorers: list[Callable[[], Awaitable[None]]] = []
        self._seen_notifications: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._connection = Connection(self)

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """idle (before connect), connecting, connected, reconnecting, or closed (for good)."""
        return self._state

    def _set_state(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        self.logger.debug("the client is %s", state)
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        for handler in list(self._state_handlers):
            handler(state)

    def on_state(self, handler: Callable[[State], Any]) -> Callable[[], None]:
        """Calls handler with every new state; returns a function that removes it."""
        self._state_handlers.append(handler)
        return lambda: self._state_handlers.remove(handler)

    def on_notification(self, handler: Callable[[Notification], Any]) -> Callable[[], None]:
        """Calls handler with every notification new to this client; returns a function that removes it."""
        self._notification_handlers.append(handler)
        return lambda: self._notification_handlers.remove(handler)

    async def wait_for_state(self, state: State, timeout: float | None = None) -> None:
        """Returns once the client is in this state; raises TimeoutError after `timeout` seconds."""

        async def reached() -> None:
            while self._state != state:
                await self._state_changed.wait()

        await asyncio.wait_for(reached(), timeout)

    # -- life ----------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Opens the connection and signs in. The first attempt fails fast: its error is raised, nothing retries.

        Once connected, the client reconnects on its own until close().
        """
        if self._state not in ("idle", "closed"):
            raise TidingsError("INVALID_STATE", f"the client is {self._state}")
        self._set_state("connecting")
        await self._connection.start()

    async def close(self) -> None:
        """Says goodbye to the server, closes the socket, and fails whatever still waits with CLOSED."""
        await self._connection.shutdown(TidingsError("CLOSED", "closed by the caller"))

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ------------------------------------------------------------------------------------------------

    async def request(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        request_id: str | None = None,
        retry: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Sends a request and returns the payload of its reply, as JSON; raises TidingsError for an error reply.

        The request waits for the connection while the client reconnects. When the connection closes before the
        reply, a request with `retry` goes out again with the same requestId; any other fails with CONNECTION_LOST,
        since it may or may not have been applied.
        """
        rid = request_id or str(uuid.uuid4())
        return await self._connection.request(type, payload, rid, retry, timeout or self.request_timeout)

    async def create(self, resource_type: str, data: dict[str, Any], *, request_id: str | None = None) -> Resource:
        """Creates a resource. Its requestId (a new UUID unless given) makes a repeated create safe: the server
        answers it with the first one's resource, so a create that lost its reply to a reconnect is sent again."""
        payload = await self.request("create", {"resourceType": resource_type, "data": data},
                                     request_id=request_id, retry=True)
        return Resource.model_validate(payload)

    async def read(self, resource_type: str, id: str) -> Resource:
        """Reads one resource."""
        payload = await self.request("read", {"resourceType": resource_type, "id": id}, retry=True)
        return Resource.model_validate(payload)

    async def list(
        self,
        resource_type: str,
        *,
        filter: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        fields: list[str] | None = None,
        count: bool | None = None,
    ) -> ResourceList:
        """Reads one page of a list; pass its `next_cursor` as `cursor` for the next, until it is None."""
        payload: dict[str, Any] = {"resourceType": resource_type}
        for name, value in (("filter", filter), ("query", query), ("orderBy", order_by), ("limit", limit),
                            ("cursor", cursor), ("fields", fields), ("count", count)):
            if value is not None:
                payload[name] = value
        if query is not None or fields is not None or count is not None or isinstance(order_by, list):
            self._require(1, "a list with a query, fields, count or several order keys")
        return ResourceList.model_validate(await self.request("read", payload, retry=True))

    async def update(
        self, resource_type: str, id: str, patch: dict[str, Any], *, expected_version: int | None = None
    ) -> Resource:
        """Applies a JSON merge patch to a resource's data; with `expected_version`, only at that version (else
        CONFLICT with details.currentVersion). Only an update with an expected version is sent again after a
        reconnect, as only it cannot apply twice."""
        payload: dict[str, Any] = {"resourceType": resource_type, "id": id, "patch": patch}
        if expected_version is not None:
            payload["expectedVersion"] = expected_version
        reply = await self.request("update", payload, retry=expected_version is not None)
        return Resource.model_validate(reply)

    async def delete(self, resource_type: str, id: str, *, expected_version: int | None = None) -> Deleted:
        """Deletes a resource; `expected_version` works as for update."""
        payload: dict[str, Any] = {"resourceType": resource_type, "id": id}
        if expected_version is not None:
            payload["expectedVersion"] = expected_version
        reply = await self.request("delete", payload, retry=expected_version is not None)
        return Deleted.model_validate(reply)

    async def batch(
        self, operations: Sequence[Mapping[str, Any]], *, request_id: str | None = None
    ) -> list[BatchResult]:
        """Applies creates, updates and deletes of any types in one transaction, or none of them (protocol 1.2).

        Each operation is the payload of its single request with `op` naming which, as the protocol writes it:
        `{"op": "create", "resourceType": "order", "data": {...}}`, `{"op": "update", "resourceType": ..., "id": ...,
        "patch": {...}, "expectedVersion": 2}`, `{"op": "delete", "resourceType": ..., "id": ...}`. Returns one result
        per operation, in order, each with its `op`: the fields of a Resource for a create or an update, those of
        Deleted for a delete. When an operation fails, nothing was applied and TidingsError carries its error, with
        `details["index"]` (its position from 0) and pointers under `/payload/operations/{index}`.

        Its requestId (a new UUID unless given) makes it safe to repeat, as a create: the server answers a repeat
        with the first batch's results and applies nothing, so a batch that lost its reply to a reconnect is sent
        again. A server that stated a version below 1.2 gets nothing: UNSUPPORTED_VERSION is raised at once.
        """
        self._require(2, "batch")
        payload = {"operations": [dict(operation) for operation in operations]}
        reply = await self.request("batch", payload, request_id=request_id, retry=True)
        return BatchReply.model_validate(reply).results

    async def broadcast(self, resource_type: str, data: dict[str, Any]) -> Resource:
        """Sends a message of an ephemeral type (protocol 1.2; docs/protocol.md, 8.8): a `create` that the server
        checks as any create and fans out at once to the type's subscribers as `<type>_created` without seq.

        It is not stored (a subscriber that is away misses it), not queued (DISCONNECTED when the client is not
        connected: a stale cursor is worth nothing) and not sent again (CONNECTION_LOST when the connection drops
        before the reply: the server does not deduplicate it). A server below 1.2 gets nothing: UNSUPPORTED_VERSION.
        """
        self._require(2, "broadcast")
        if self._state != "connected" or not self._connection.ready.is_set():
            raise TidingsError("DISCONNECTED", "broadcast is sent only while connected; nothing was sent")
        rid = str(uuid.uuid4())
        try:
            reply = await self._connection._call("create", {"resourceType": resource_type, "data": data}, rid,
                                                 self.request_timeout)
        except Lost as lost:
            raise TidingsError("CONNECTION_LOST", f"the connection closed before the reply to broadcast: {lost}",
                               {"code": lost.code}, rid) from None
        return Resource.model_validate(reply.raw["payload"])

    async def presence(self, topic: str) -> Presence:
        """Follows who is at a topic (a type such as `order`, or a resource such as `order:ORD-1`; protocol 1.2):
        returns a Presence once the server answered with the members present, whose `join(state)`, `update(patch)`
        and `leave()` make this client's own member there. After a reconnect it follows again and joins again by
        itself. A server below 1.2 gets nothing: UNSUPPORTED_VERSION is raised at once."""
        self._require(2, "presence")
        handle = Presence(self, topic)
        await handle._follow()
        return handle

    async def _restore(self) -> None:
        await asyncio.gather(*(rejoin() for rejoin in list(self._restorers)))

    async def ping(self) -> float:
        """Sends a ping and returns the seconds until its pong."""
        started = time.monotonic()
        await self.request("ping", {}, retry=True)
        return time.monotonic() - started

    async def subscribe(
        self,
        topic: str,
        *,
        since: int | None = None,
        query: dict[str, Any] | None = None,
        snapshot: bool = False,
    ) -> Subscription:
        """Subscribes to a topic: `notifications`, a resource type (`order`) or one resource (`order:ORD-1`).

        With `since`, the server first replays the events after that seq. With a `query` (protocol 1.1), only the
        resources of the type that match it; with `snapshot`, the reply's `items` are what it covers now. The
        returned Subscription yields its events in seq order, and is resumed after every reconnect.
        """
        key = subscription_key(topic, query)
        if key in self._subscriptions:
            raise TidingsError("CONFLICT", f"this client already subscribes to {key}")
        if query is not None or snapshot:
            self._require(1, "a query subscription or a snapshot")
        if topic.startswith(PRESENCE_PREFIX):
            self._require(2, "presence")
        sub = Subscription(self, topic, query, snapshot)
        if since is not None:
            sub.last_seq = since
        payload: dict[str, Any] = {"topic": topic}
        if since is not None:
            payload["since"] = since
        if query is not None:
            payload["query"] = query
        if snapshot:
            payload["snapshot"] = True
        self._subscriptions[key] = sub
        try:
            # The reply completes the subscription as it is read, before the events that follow it; a reply lost to
            # a reconnect is asked for again, as subscribing is safe to repeat on a new connection.
            await self._connection.request(
                "subscribe", payload, str(uuid.uuid4()), True, self.request_timeout,
                on_reply=lambda reply: sub._apply_reply(reply, since),
            )
        except BaseException:
            self._subscriptions.pop(key, None)
            raise
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self._subscriptions.get(sub.key) is not sub:
            return
        del self._subscriptions[sub.key]
        sub._end()
        if self._state == "connected" and sub.subscription_id:
            try:
                await self.request("unsubscribe", {"subscriptionId": sub.subscription_id})
            except TidingsError as error:
                # The subscription is gone either way; NOT_FOUND means the server had ended it already.
                if error.code not in ("NOT_FOUND", "CONNECTION_LOST", "CLOSED"):
                    raise

    def subscriptions(self) -> list[Subscription]:
        """The live subscriptions."""
        return [sub for sub in self._subscriptions.values() if sub._active]

    def _require(self, minor: int, what: str) -> None:
        """Refuses what the server's stated 1.x version lacks, before anything is sent. A 1.0 server ignores fields
        it does not know and would answer with the whole topic or list; one below 1.2 answers a batch with
        UNSUPPORTED_TYPE, which would tell less than this. Before the first `connect` reply nothing is known."""
        if self.server_version is None:
            return
        major, _, stated = self.server_version.partition(".")
        if major == "1" and (int(stated) if stated.isdigit() else 0) < minor:
            raise TidingsError("UNSUPPORTED_VERSION",
                               f"{what} needs protocol 1.{minor}; the server speaks {self.server_version}",
                               {"serverVersion": self.server_version})

    # -- pushes, called by the connection as messages are read ---------------------------------------------------

    def _subscription_of(self, subscription_id: str | None, topic: str | None) -> Subscription | None:
        if subscription_id:
            for sub in self._subscriptions.values():
                if sub.subscription_id == subscription_id:
                    return sub
            return None
        return self._subscriptions.get(topic) if topic else None

    def _on_event(self, payload: dict[str, Any]) -> None:
        event = Event.model_validate(payload)
        sub = self._subscription_of(event.subscription_id, event.topic)
        if sub is None:
            self.logger.debug("an event of no subscription of this client: %s", event.subscription_id)
            return
        if sub._count_event(event):
            sub._put(event)

    def _on_notification(self, payload: dict[str, Any]) -> None:
        note = Notification.model_validate(payload)
        sub = self._subscriptions.get(NOTIFICATIONS)
        if sub is not None and not sub._count_notification(note):
            return
        # A server that crashed may not have stored that it delivered a notification, and pushes it again at the
        # next sign-in; the ids seen last keep it from reaching the app twice.
        if note.id in self._seen_notifications:
            return
        self._seen_notifications[note.id] = None
        if len(self._seen_notifications) > SEEN_NOTIFICATIONS:
            self._seen_notifications.popitem(last=False)
        if sub is not None:
            sub._put(note)
        self.notifications._put(note)
        for handler in list(self._notification_handlers):
            handler(note)

    def _on_ended(self, payload: dict[str, Any]) -> None:
        """The server ended a subscription (an `unsubscribe` push)."""
        sub = self._subscription_of(payload.get("subscriptionId"), payload.get("topic"))
        if sub is None:
            return
        self._subscriptions.pop(sub.key, None)
        reason = payload.get("reason") or {}
        sub._end(TidingsError(str(reason.get("code", "INTERNAL")), str(reason.get("message", "ended by the server"))))
