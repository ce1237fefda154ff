"""Streams of events and notifications, and the subscriptions the client resumes after a reconnect by `since`."""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from .models.server.event import Payload as Event
from .models.server.notification import Payload as Notification
from .models.server.read import Resource
from .protocol import TidingsError

if TYPE_CHECKING:
    from .client import Client

T = TypeVar("T")

#: The topic whose subscription carries the user's notifications instead of events.
NOTIFICATIONS = "notifications"

#: What starts a presence topic (`presence:order:ORD-1`, protocol 1.2): who is at the topic after it.
PRESENCE_PREFIX = "presence:"


class _End:
    """Marks the end of a stream in its queue."""


_END = _End()


class Stream(Generic[T]):
    """Items as they arrive, to iterate with `async for` or to take one at a time with `await stream.next(timeout)`.

    A stream with `maxlen` keeps only that many items that nobody took yet, dropping the oldest, so that a client
    whose notifications nobody reads does not grow without bound.
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._items: collections.deque[T | _End] = collections.deque(maxlen=maxlen)
        self._waiters: list[asyncio.Future[None]] = []
        self._ended = False
        #: Why the stream ended, when something ended it (a server's `unsubscribe`, the client closing).
        self.end_reason: TidingsError | None = None

    def _put(self, item: T | _End) -> None:
        self._items.append(item)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _end(self, reason: TidingsError | None = None) -> None:
        if not self._ended:
            self._ended = True
            self.end_reason = reason
            self._put(_END)

    @property
    def ended(self) -> bool:
        """Whether the stream has ended: no item follows those already in it."""
        return self._ended

    def pending(self) -> int:
        """How many items arrived that nobody took yet."""
        return sum(1 for item in self._items if item is not _END)

    async def next(self, timeout: float | None = None) -> T:
        """The next item; raises TimeoutError after `timeout` seconds without one, StopAsyncIteration at the end."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        item = self._items[0]
        if isinstance(item, _End):
            # The end stays in place, so that every later call ends too.
            raise StopAsyncIteration
        self._items.popleft()
        return item


@dataclass(frozen=True)
class Gap:
    """Events of a topic that the server could no longer replay after a reconnect (`recovered: false`).

    The events after `since` up to `seq` are lost to this client: it must read again what it shows. With a snapshot
    subscription, `items` is what the subscription covers as of `seq`.
    """

    topic: str
    subscription_id: str
    since: int
    seq: int
    items: list[Resource] | None = None
    next_cursor: str | None = None


def subscription_key(topic: str, query: dict[str, Any] | None) -> str:
    """The key of a subscription among the client's: the topic, or the topic, `?` and the query as canonical JSON."""
    if query is None:
        return topic
    return f"{topic}?{json.dumps(query, sort_keys=True, separators=(',', ':'))}"


class Subscription(Stream[Any]):
    """One subscription: its events (or, for the `notifications` topic, its notifications), in `seq` order.

    The client resumes it after every reconnect with `since` set to `last_seq`, so the stream has every event
    exactly once; when the server cannot replay them all it reports a Gap to the `on_gap` handlers and in `gaps`.
    The events of a presence topic and of an ephemeral type have no seq (protocol 1.2): such a subscription is
    resumed without `since`, and a presence topic's resume is a Gap whose `items` are the members present then.
    """

    def __init__(self, client: Client, topic: str, query: dict[str, Any] | None, snapshot: bool) -> None:
        super().__init__()
        self._client = client
        self.topic = topic
        self.query = query
        self.snapshot = snapshot
        self.key = subscription_key(topic, query)
        #: The id the server gave it, which its events carry; empty until the first reply.
        self.subscription_id = ""
        #: The seq of the last event delivered, which a resume sends as `since`.
        self.last_seq = 0
        #: The `recovered` of the last resume, when it had `since`.
        self.recovered: bool | None = None
        #: With a snapshot: the resources it covers as of the first reply.
        self.items: list[Resource] | None = None
        self.next_cursor: str | None = None
        #: The gaps reported, oldest first.
        self.gaps: list[Gap] = []
        self._gap_handlers: list[Callable[[Gap], Any]] = []
        # Seqs above last_seq of notifications pushed at sign-in, before the resume's replay (see count_notification).
        self._ahead: set[int] = set()
        self._active = False
        #: Whether its events carry seq, so that a resume asks for a replay with `since`: not a presence topic's,
        #: nor, once one of its events came without seq, an ephemeral type's (nothing of theirs is in a log).
        self.resumable = not topic.startswith(PRESENCE_PREFIX)
        # Takes the items as they are read instead of the queue, in order with the gaps: a presence handle's.
        self._sink: Callable[[Any], None] | None = None

    def on_gap(self, handler: Callable[[Gap], Any]) -> Callable[[], None]:
        """Calls handler with every Gap; returns a function that removes it."""
        self._gap_handlers.append(handler)
        return lambda: self._gap_handlers.remove(handler)

    async def unsubscribe(self) -> None:
        """Ends the subscription on the server and ends the stream."""
        await self._client._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.ended:
            await self.unsubscribe()

    def _put(self, item: Any) -> None:
        if self._sink is not None and not isinstance(item, _End):
            self._sink(item)
            return
        super()._put(item)

    def _apply_reply(self, payload: dict[str, Any], since: int | None, resumed: bool = False) -> None:
        """Completes the subscription with the reply to its `subscribe`, sent with `since` (None: live only), or
        to the `subscribe` that `resumed` it after a reconnect."""
        self._active = True
        self.subscription_id = payload["subscriptionId"]
        recovered = payload.get("recovered")
        self.recovered = recovered
        # Without recovery no replay comes, and live events go on after the reply's seq.
        start = payload["seq"] if recovered is False or since is None else since
        if start > self.last_seq:
            self._advance(start)
        items = payload.get("items")
        resources = [Resource.model_validate(item) for item in items] if isinstance(items, list) else None
        if since is None:
            self.items, self.next_cursor = resources, payload.get("nextCursor")
        gap = None
        if recovered is False:
            gap = Gap(self.topic, self.subscription_id, since if since is not None else payload["seq"], payload["seq"],
                      resources, payload.get("nextCursor"))
        elif resumed and self.topic.startswith(PRESENCE_PREFIX):
            # Presence keeps no history: the members of the reply replace those held.
            gap = Gap(self.topic, self.subscription_id, self.last_seq, payload["seq"], resources or [], None)
        if gap is not None:
            self.gaps.append(gap)
            for handler in list(self._gap_handlers):
                handler(gap)

    def _advance(self, seq: int) -> None:
        self.last_seq = seq
        self._ahead = {s for s in self._ahead if s > seq}

    def _count_event(self, event: Event) -> bool:
        """Whether an event is new; counts it toward last_seq. One at or below last_seq came before a reconnect."""
        if event.seq is None:
            # In no log (presence, an ephemeral type): always new, and nothing to resume from.
            self.resumable = False
            return True
        if event.seq <= self.last_seq:
            return False
        self._advance(event.seq)
        return True

    def _count_notification(self, note: Notification) -> bool:
        """Whether a notification is new; counts it toward last_seq.

        One that comes through the subscription moves last_seq on. One pushed at sign-in (without subscriptionId)
        is kept in `_ahead` instead: last_seq cannot jump to its seq, because a notification in between that
        another connection of the user received is not pushed at sign-in, and only the replay after last_seq brings
        it. When the replay brings a notification of `_ahead` again, it is dropped.
        """
        if note.seq <= self.last_seq:
            return False
        seen = note.seq in self._ahead
        if note.subscription_id:
            self._advance(note.seq)
        else:
            self._ahead.add(note.seq)
        return not seen
