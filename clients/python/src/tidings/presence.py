"""Presence handles, what `Client.presence(topic)` returns: who is at a topic now (docs/protocol.md, 8.7), and this
client's own member there, joined again on every new connection, since a member ends with the connection that
joined it."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .connection import Lost
from .models.server.read import Resource
from .protocol import TidingsError
from .subscriptions import PRESENCE_PREFIX, Event, Gap, Subscription

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class Member:
    """One connection present at the topic; a user with two tabs there is one user with two members."""

    #: The member's id (`PRS-...`).
    id: str
    #: Its user: the member's ownerId.
    user_id: str
    #: What it tells the others, such as `{"name": "Bob", "status": "editing"}`.
    state: dict[str, Any]
    #: 1 when it joined, one more at each change of its state.
    version: int
    #: When it joined (when this client first heard of it, for one learned from an event), Unix ms.
    joined_at: int
    #: When its state last changed, Unix ms.
    updated_at: int
    #: Whether it is this handle's own member, made by join() on the current connection.
    own: bool


class Presence:
    """Who is at a topic (a type such as `order`, or one resource such as `order:ORD-1`), kept from the members the
    subscribe to `presence:TOPIC` answered with and the events that follow; and this client's member there.

    `join(state)` makes the member (or replaces its state), `update(patch)` changes the state by a JSON merge patch,
    `leave()` ends it, `close()` leaves and stops following. After a reconnect the members come anew from the server
    and the handle joins again with its last state, before the client reports `connected`. A member's requests
    belong to the connection they go out on: they are never sent again on the next one, where the rejoin makes the
    member, so one handle never has two members on one connection.
    """

    def __init__(self, client: Client, topic: str) -> None:
        self._client = client
        self.topic = topic
        #: The failure that ended following, or a join or state the server refused; None when there is none.
        self.error: TidingsError | None = None
        self._held: dict[str, dict[str, Any]] = {}
        self._sub: Subscription | None = None
        self._wanted: dict[str, Any] | None = None
        self._member: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._handlers: list[Callable[[Presence], Any]] = []
        self._changed = asyncio.Event()
        self._closed = False

    # -- what it shows -------------------------------------------------------------------------------------------

    @property
    def members(self) -> list[Member]:
        """The members present, by the time they joined, then by id."""
        held = sorted(self._held.values(), key=lambda m: (m["createdAt"], m["id"]))
        return [self._member_of(m) for m in held]

    @property
    def users(self) -> dict[str, list[Member]]:
        """The members grouped by user, in the order of each user's first member: the users present."""
        users: dict[str, list[Member]] = {}
        for member in self.members:
            users.setdefault(member.user_id, []).append(member)
        return users

    @property
    def me(self) -> Member | None:
        """This handle's own member as the server holds it; None until the join is answered, or when not joined."""
        return None if self._member is None else self._member_of(self._member)

    @property
    def joined(self) -> bool:
        """Whether this handle is present (or about to be): join() was called, and neither leave() nor a refusal."""
        return self._wanted is not None

    @property
    def closed(self) -> bool:
        """Whether it stopped following: close() was called, or the server ended the subscription (see `error`)."""
        return self._closed

    def on_change(self, handler: Callable[[Presence], Any]) -> Callable[[], None]:
        """Calls handler with this handle after every change of the members or of its own member; returns a function
        that removes it."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    async def wait_until(self, check: Callable[[Presence], bool], timeout: float | None = None) -> None:
        """Returns once check(self) holds, asked again after every change; raises TimeoutError after `timeout`."""

        async def holds() -> None:
            while not check(self):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(holds(), timeout)

    # -- being there ---------------------------------------------------------------------------------------------

    async def join(self, state: dict[str, Any] | None = None) -> Member:
        """Joins the topic with this state, or replaces the state; returns the member once the server holds it,
        waiting for the connection if it is down. A refusal (NOT_FOUND or FORBIDDEN: the user may not read the
        topic; LIMIT_EXCEEDED; INVALID_PARAMS: a state that is no object or too big) is raised, and the handle is
        then not joined."""
        self._refuse_if_closed()
        self._wanted = copy.deepcopy(state or {})
        await self._settle()
        member = self.me
        if member is None:
            raise TidingsError("NOT_FOUND", f"left {self.topic} before the join was done", {"topic": self.topic})
        return member

    async def update(self, patch: dict[str, Any]) -> Member:
        """Changes the state by a JSON merge patch (a field set to None is removed); NOT_FOUND when not joined."""
        self._refuse_if_closed()
        if self._wanted is None:
            raise TidingsError("NOT_FOUND", f"not present at {self.topic}: join() first", {"topic": self.topic})
        self._wanted = merge_patch(self._wanted, patch)
        return await self.join(self._wanted)

    async def leave(self) -> None:
        """Leaves the topic; returns once the server confirmed (at once when not connected: the member ended with
        the connection)."""
        self._wanted = None
        if self._client.state != "connected":
            self._own(None)
            return
        await self._settle()

    async def close(self) -> None:
        """Leaves (when joined) and stops following."""
        if self._closed:
            return
        try:
            if self._wanted is not None or self._member is not None:
                await self.leave()
        except TidingsError:
            # The member ends with the connection anyway.
            pass
        self._end(None)
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def __aenter__(self) -> Presence:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- following, called by the client -------------------------------------------------------------------------

    async def _follow(self) -> None:
        sub = await self._client.subscribe(f"{PRESENCE_PREFIX}{self.topic}")
        self._sub = sub
        self._replace(sub.items or [])
        # Events read since the reply wait in the subscription's queue: they are taken first, in order.
        while sub._items:
            self._take(sub._items.popleft())
        sub._sink = self._take
        sub.on_gap(self._reset)
        self._client._restorers.append(self._rejoin)

    def _take(self, item: Any) -> None:
        """An item of the subscription: a presence event, or the end of the stream."""
        if isinstance(item, Event):
            self._apply(item)
        elif self._sub is not None and self._sub.ended and not self._closed:
            # The server ended it (NOT_FOUND, FORBIDDEN), or a resume failed: following is over.
            self._end(self._sub.end_reason)

    def _apply(self, event: Event) -> None:
        if event.id is None or event.version is None:
            return
        held = self._held.get(event.id)
        if event.event_type == "presence_deleted":
            if self._held.pop(event.id, None) is not None:
                self._notify()
            return
        if event.event_type not in ("presence_created", "presence_updated"):
            return
        if held is not None and held["version"] >= event.version:
            return
        at = event.occurred_at or 0
        self._held[event.id] = {
            "id": event.id,
            "ownerId": event.owner_id or (held or {}).get("ownerId", ""),
            "version": event.version,
            "createdAt": held["createdAt"] if held is not None else at,
            "updatedAt": at,
            "data": event.data,
        }
        self._notify()

    def _reset(self, gap: Gap) -> None:
        """A reconnect brought the members present now: they replace those held."""
        self._replace(gap.items or [])

    def _replace(self, items: list[Resource]) -> None:
        self._held = {item.id: item.model_dump(by_alias=True) for item in items}
        self._notify()

    def _end(self, reason: TidingsError | None) -> None:
        self._closed = True
        if reason is not None:
            self.error = reason
            self._wanted = None
        if self._rejoin in self._client._restorers:
            self._client._restorers.remove(self._rejoin)
        self._notify()

    # -- the own member ------------------------------------------------------------------------------------------

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise self.error or TidingsError("CLOSED", f"the presence handle of {self.topic} is closed")

    async def _settle(self) -> None:
        """Makes the member as wanted on the current connection, waiting for one when there is none."""
        connection = self._client._connection
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._client.request_timeout
        while True:
            if self._client.state in ("idle", "closed"):
                raise TidingsError("CLOSED", "the client is not connected; call connect()")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TidingsError("TIMEOUT", f"not present at {self.topic} within {self._client.request_timeout} s")
            if not connection.ready.is_set():
                try:
                    await asyncio.wait_for(connection.ready.wait(), remaining)
                except asyncio.TimeoutError:
                    continue
            async with self._lock:
                # The lock is not held while waiting for a connection: that connection's rejoin takes it first.
                if not connection.ready.is_set():
                    continue
                try:
                    await self._sync()
                    return
                except Lost as lost:
                    # The member ended with the connection; the next connection's rejoin makes it again.
                    self._own(None)
                    if connection.closed:
                        raise TidingsError("CLOSED", "the client closed before the member was as asked") from lost
                    await asyncio.sleep(0)

    async def _rejoin(self) -> None:
        """A new connection, before it is ready: the old member ended with the old one, and is made again."""
        async with self._lock:
            self._own(None)
            if self._wanted is None:
                return
            try:
                await self._sync()
            except TidingsError as error:
                if error.code == "TIMEOUT":
                    # This connection does not answer: the attempt fails, and the next one joins again.
                    raise
                # The server refuses it now (the topic's resource was deleted, the user may no longer read it).
                self.error = error
                self._notify()

    async def _sync(self) -> None:
        """Sends what makes the member as wanted, one request at a time: a create (join), a merge patch of its
        state, or a delete (leave). A refusal makes the handle hold what the server holds, and is raised."""
        connection = self._client._connection
        timeout = self._client.request_timeout
        while True:
            wanted, member = self._wanted, self._member
            if wanted is None and member is None:
                return
            if member is None:
                data = {"topic": self.topic, "state": wanted}
                try:
                    payload = {"resourceType": "presence", "data": data}
                    reply = await connection._call("create", payload, _rid(), timeout)
                except TidingsError as error:
                    self._refused(error, joined=False)
                    raise
                self._own(reply.raw["payload"])
            elif wanted is None:
                try:
                    await connection._call("delete", {"resourceType": "presence", "id": member["id"]}, _rid(), timeout)
                except TidingsError as error:
                    # NOT_FOUND: it is gone already, which is what leaving wants.
                    if error.code != "NOT_FOUND":
                        raise
                self._own(None)
            else:
                patch = diff(_state_of(member), wanted)
                if patch is None:
                    return
                payload = {"resourceType": "presence", "id": member["id"], "patch": {"state": patch}}
                try:
                    reply = await connection._call("update", payload, _rid(), timeout)
                except TidingsError as error:
                    self._refused(error, joined=True)
                    raise
                self._own(reply.raw["payload"])
            # Once per request: the loop goes on only when the app asked for something else meanwhile.
            if self._wanted is wanted:
                return

    def _refused(self, error: TidingsError, *, joined: bool) -> None:
        self.error = error
        self._wanted = copy.deepcopy(_state_of(self._member)) if joined and self._member is not None else None
        self._notify()

    def _own(self, member: dict[str, Any] | None) -> None:
        self._member = member
        self._notify()

    def _member_of(self, held: dict[str, Any]) -> Member:
        return Member(
            id=held["id"],
            user_id=held["ownerId"],
            state=_state_of(held),
            version=held["version"],
            joined_at=held["createdAt"],
            updated_at=held["updatedAt"],
            own=self._member is not None and held["id"] == self._member["id"],
        )

    def _notify(self) -> None:
        self._changed.set()
        for handler in list(self._handlers):
            handler(self)


def _rid() -> str:
    return str(uuid.uuid4())


def _state_of(member: dict[str, Any]) -> dict[str, Any]:
    state = (member.get("data") or {}).get("state")
    return state if isinstance(state, dict) else {}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`target` with a JSON merge patch applied (RFC 7386): None removes a field, a dict merges into a dict."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            inner = out.get(key)
            out[key] = merge_patch(inner if isinstance(inner, dict) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that turns `before` into `after`, or None when they are equal."""
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        was = before.get(key)
        if isinstance(was, dict) and isinstance(value, dict):
            inner = diff(was, value)
            if inner is not None:
                patch[key] = inner
        elif key not in before or json.dumps(was, sort_keys=True) != json.dumps(value, sort_keys=True):
            patch[key] = value
    return patch or None
