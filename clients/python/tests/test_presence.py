"""Presence and ephemeral broadcast (protocol 1.2) through Client.presence and Client.broadcast: against the real
server, members join, change their state and leave as another user sees them; after a dropped connection the handle
follows again without `since` and joins again with its last state; an ephemeral type's messages arrive without seq,
through a reconnect, and are not queued; against a fake server that states 1.1, neither is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tidings import Client, Event, Presence, TidingsError

from conftest import Server, _start

#: The design notes' order, and `cursor`, an ephemeral type anyone signed in may send and receive, in the inline
#: form a TIDINGS_* variable takes.
TYPES = (
    '[{name="order", id_prefix="ORD", field_roles={status=["admin"]}, schema={type="object", '
    'required=["productId","quantity","totalAmount","status"], properties={productId={type="string", minLength=1}, '
    'quantity={type="integer", minimum=1}, totalAmount={type="number", minimum=0}, status={type="string", '
    'enum=["pending","paid","shipped","cancelled"], default="pending"}}}}, '
    '{name="cursor", id_prefix="CUR", ephemeral=true, permissions={create=["authenticated"], read=["authenticated"]}, '
    'schema={type="object", required=["x","y"], properties={x={type="integer"}, y={type="integer"}}}}]'
)


@pytest.fixture(scope="module")
def typed_server() -> Iterator[Server]:
    yield from _start({"TIDINGS_RESOURCE_TYPES": TYPES})


def _shown(presence: Presence) -> list[tuple[str, dict[str, Any]]]:
    return [(m.user_id, m.state) for m in presence.members]


class Recorder:
    """Keeps every request a client sends on its sockets: (type, payload)."""

    def __init__(self, client: Client) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        connection = client._connection
        call = connection._call

        async def recording(type, payload, request_id, timeout, on_reply=None):  # type: ignore[no-untyped-def]
            self.sent.append((type, payload))
            return await call(type, payload, request_id, timeout, on_reply)

        connection._call = recording  # type: ignore[method-assign]


async def test_members_join_change_and_leave_as_another_user_sees_them(typed_server: Server) -> None:
    async with Client(typed_server.url, typed_server.token("alice")) as alice, \
            Client(typed_server.url, typed_server.token("bob")) as bob, \
            Client(typed_server.url, typed_server.token("bob")) as tab:
        watching = await alice.presence("order")
        assert watching.members == []
        here = await bob.presence("order")
        member = await here.join({"name": "Bob"})
        assert (member.user_id, member.state, member.own) == ("bob", {"name": "Bob"}, True)
        assert member.id.startswith("PRS-")
        await watching.wait_until(lambda p: _shown(p) == [("bob", {"name": "Bob"})], 5)
        assert watching.members[0].own is False

        second = await tab.presence("order")
        await second.join({"name": "Bob", "tab": 2})
        await watching.wait_until(lambda p: len(p.users.get("bob", [])) == 2, 5)
        assert list(watching.users) == ["bob"]

        assert (await here.update({"status": "editing"})).state == {"name": "Bob", "status": "editing"}
        await watching.wait_until(lambda p: any(m.state.get("status") == "editing" for m in p.members), 5)
        assert (await here.update({"status": None})).state == {"name": "Bob"}

        await here.leave()
        assert (here.joined, here.me) == (False, None)
        await watching.wait_until(lambda p: len(p.members) == 1, 5)
        # The second tab's connection ends: its member leaves with it.
        await tab.close()
        await watching.wait_until(lambda p: p.members == [], 5)
        await watching.close()
        assert watching.closed


async def test_after_a_dropped_connection_the_handle_follows_again_and_joins_again(typed_server: Server) -> None:
    async with Client(typed_server.url, typed_server.token("carol")) as carol, \
            Client(typed_server.url, typed_server.token("dave")) as dave:
        mine = await carol.presence("order")
        await mine.join({"name": "Carol"})
        await mine.update({"status": "editing"})
        first = mine.me
        assert first is not None
        theirs = await dave.presence("order")
        await theirs.join({"name": "Dave"})
        await mine.wait_until(lambda p: len(p.members) == 2, 5)
        recorder = Recorder(carol)
        gaps: list[Any] = []
        mine._sub.on_gap(gaps.append)  # type: ignore[union-attr]

        ws = carol._connection.ws
        assert ws is not None
        ws.transport.abort()
        await carol.wait_for_state("reconnecting", 5)
        await carol.wait_for_state("connected", 10)
        # Joined again before the client was connected, as a new member, with the state it had.
        now = mine.me
        assert now is not None and now.id != first.id
        assert now.state == {"name": "Carol", "status": "editing"}
        subscribes = [payload for type, payload in recorder.sent if type == "subscribe"]
        assert subscribes == [{"topic": "presence:order"}], "no since: presence keeps no history"
        types = [type for type, _ in recorder.sent]
        assert types.index("create") > types.index("subscribe"), "joined again once the subscription was resumed"
        assert gaps and any(item.owner_id == "dave" for item in gaps[0].items)

        carols = lambda p: [m.id for m in p.members if m.user_id == "carol"]  # noqa: E731
        await theirs.wait_until(lambda p: carols(p) == [now.id], 10)
        await mine.wait_until(lambda p: carols(p) == [now.id] and len(p.members) == 2, 10)
        assert next(m for m in mine.members if m.user_id == "carol").own


async def test_broadcast_reaches_subscribers_without_seq_and_is_not_queued(typed_server: Server) -> None:
    async with Client(typed_server.url, typed_server.token("ivy")) as ivy, \
            Client(typed_server.url, typed_server.token("jack")) as jack:
        recorder = Recorder(jack)
        cursors = await jack.subscribe("cursor")
        sent = await ivy.broadcast("cursor", {"x": 1, "y": 2})
        event: Event = await cursors.next(5)
        assert (event.event_type, event.seq, event.data) == ("cursor_created", None, {"x": 1, "y": 2})
        assert event.id == sent.id
        with pytest.raises(TidingsError) as missing:
            await ivy.read("cursor", sent.id)
        assert missing.value.code == "NOT_FOUND"

        # Resumed without since and without a gap; what follows is not taken for a repeat.
        ws = jack._connection.ws
        assert ws is not None
        ws.transport.abort()
        await jack.wait_for_state("reconnecting", 5)
        await jack.wait_for_state("connected", 10)
        assert [p for t, p in recorder.sent if t == "subscribe"] == [{"topic": "cursor"}, {"topic": "cursor"}]
        await ivy.broadcast("cursor", {"x": 3, "y": 4})
        assert (await cursors.next(5)).data == {"x": 3, "y": 4}
        assert cursors.gaps == []

        # Not queued: while ivy is away, broadcast fails at once.
        gate = asyncio.Event()

        async def held(attempt: int, delay: float) -> None:
            await gate.wait()

        ivy.retry_wait = held
        ws = ivy._connection.ws
        assert ws is not None
        ws.transport.abort()
        await ivy.wait_for_state("reconnecting", 5)
        with pytest.raises(TidingsError) as away:
            await ivy.broadcast("cursor", {"x": 5, "y": 6})
        assert away.value.code == "DISCONNECTED"
        gate.set()
        await ivy.wait_for_state("connected", 10)
        await ivy.broadcast("cursor", {"x": 7, "y": 8})
        assert (await cursors.next(5)).data == {"x": 7, "y": 8}
        assert cursors.pending() == 0


async def test_a_server_that_states_1_1_gets_no_presence_and_no_broadcast() -> None:
    received: list[dict[str, Any]] = []

    async def old_server(ws: ServerConnection) -> None:
        # Answers connect as a 1.1 server would, and auth; what else it is sent, it only records.
        async for text in ws:
            message = json.loads(text)
            received.append(message)
            payloads = {
                "connect": {"protocolVersion": "1.1", "sessionId": "s", "authTimeoutMs": 10000,
                            "heartbeat": {"pingIntervalMs": 25000, "idleTimeoutMs": 60000},
                            "limits": {"maxMessageBytes": 65536, "maxSubscriptions": 100,
                                       "rateLimit": {"messagesPerSecond": 50, "burst": 100}}},
                "auth": {"userId": "u", "roles": [], "expiresAt": 4102444800000},
            }
            if message["type"] in payloads:
                reply_type = {"auth": "auth_success"}.get(message["type"], message["type"])
                await ws.send(json.dumps({"type": reply_type, "timestamp": 1764000000000,
                                          "requestId": message["requestId"], "payload": payloads[message["type"]]}))

    async with serve(old_server, "127.0.0.1", 0) as fake:
        port = fake.sockets[0].getsockname()[1]
        async with Client(f"ws://127.0.0.1:{port}/ws", "t") as client:
            for attempt in (client.presence("order"), client.broadcast("cursor", {"x": 1}),
                            client.subscribe("presence:order")):
                with pytest.raises(TidingsError) as refused:
                    await attempt
                assert refused.value.code == "UNSUPPORTED_VERSION"
    assert [m["type"] for m in received] == ["connect", "auth", "disconnect"]
