"""The WebSocket client against the real server: sign-in, create/read/update/delete of orders, lists, subscriptions."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tidings import Client, TidingsError

from conftest import Server


async def test_sign_in_tells_the_user_and_the_server_version(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("alice")) as client:
        assert client.state == "connected"
        assert client.user_id == "alice"
        assert client.server_version is not None and client.server_version.startswith("1.")
        assert client.session_id
        assert await client.ping() >= 0
    assert client.state == "closed"


async def test_a_rejected_token_fails_connect_at_once(shared_server: Server) -> None:
    client = Client(shared_server.url, "not-a-jwt", max_attempts=0)
    with pytest.raises(TidingsError) as failure:
        await asyncio.wait_for(client.connect(), 10)
    assert failure.value.code == "UNAUTHORIZED"
    assert failure.value.details.get("reason") == "malformed"
    assert client.state == "closed"


async def test_an_unreachable_server_fails_connect_at_once(shared_server: Server) -> None:
    # A port held by a socket that does not listen: the first attempt's error (connection refused) comes back
    # instead of a connect() that never ends.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        client = Client(f"ws://127.0.0.1:{held.getsockname()[1]}/ws", shared_server.token("alice"))
        with pytest.raises(OSError):
            await asyncio.wait_for(client.connect(), 10)
    assert client.state == "closed"


async def test_create_read_update_delete_an_order(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("alice")) as client:
        created = await client.create("order", {"productId": "P12345", "quantity": 2, "totalAmount": 99.99})
        assert created.id.startswith("ORD-")
        assert (created.version, created.owner_id, created.resource_type) == (1, "alice", "order")
        assert created.data == {"productId": "P12345", "quantity": 2, "totalAmount": 99.99, "status": "pending"}

        read = await client.read("order", created.id)
        assert read == created

        updated = await client.update("order", created.id, {"quantity": 3}, expected_version=1)
        assert updated.version == 2 and updated.data["quantity"] == 3
        assert (await client.read("order", created.id)).data["quantity"] == 3

        with pytest.raises(TidingsError) as stale:
            await client.update("order", created.id, {"quantity": 4}, expected_version=1)
        assert stale.value.code == "CONFLICT"
        assert stale.value.details["currentVersion"] == 2

        deleted = await client.delete("order", created.id, expected_version=2)
        assert (deleted.id, deleted.version) == (created.id, 3)
        with pytest.raises(TidingsError) as gone:
            await client.read("order", created.id)
        assert gone.value.code == "NOT_FOUND"


async def test_invalid_data_names_the_bad_field(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("alice")) as client:
        with pytest.raises(TidingsError) as failure:
            await client.create("order", {"productId": "P1", "quantity": 0, "totalAmount": 1})
        assert failure.value.code == "INVALID_PARAMS"
        assert [e.pointer for e in failure.value.errors] == ["/payload/data/quantity"]


async def test_a_create_repeated_with_its_request_id_creates_once(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("carol")) as client:
        data = {"productId": "P-repeat", "quantity": 1, "totalAmount": 1}
        first = await client.create("order", data, request_id="carol-create-1")
        again = await client.create("order", data, request_id="carol-create-1")
        assert again.id == first.id
        page = await client.list("order", filter={"productId": "P-repeat"})
        assert [r.id for r in page.items] == [first.id]


async def test_a_list_pages_until_next_cursor_is_none(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("dave")) as client:
        ids = [(await client.create("order", {"productId": f"D{i}", "quantity": 1, "totalAmount": i})).id
               for i in range(5)]
        seen, cursor = [], None
        while True:
            page = await client.list("order", limit=2, cursor=cursor, order_by="createdAt")
            assert len(page.items) <= 2
            seen += [r.id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ids
        counted = await client.list("order", limit=1, count=True, query={"field": "data.totalAmount", "gte": 3})
        assert counted.total == 2


async def test_a_subscription_receives_the_events_of_its_topic_in_order(shared_server: Server) -> None:
    # The admin sees every order; alice changes hers on her own connection.
    async with Client(shared_server.url, shared_server.token("olga", ("admin",))) as admin, \
            Client(shared_server.url, shared_server.token("alice")) as alice:
        orders = await admin.subscribe("order")
        assert orders.subscription_id == "order"
        order = await alice.create("order", {"productId": "P-sub", "quantity": 1, "totalAmount": 10})
        await alice.update("order", order.id, {"quantity": 2})
        await admin.update("order", order.id, {"status": "paid"})
        await alice.delete("order", order.id)

        events = [await orders.next(timeout=10) for _ in range(4)]
        assert [e.event_type for e in events] == ["order_created", "order_updated", "order_updated", "order_deleted"]
        assert {e.id for e in events} == {order.id}
        assert [e.version for e in events] == [1, 2, 3, 4]
        assert all(a.seq < b.seq for a, b in zip(events, events[1:]))  # type: ignore[operator]
        assert events[2].actor is not None and events[2].actor.id == "olga"
        assert events[2].data["status"] == "paid"
        assert orders.last_seq == events[-1].seq

        # One resource's topic: its seq is the resource's version.
        other = await alice.create("order", {"productId": "P-one", "quantity": 1, "totalAmount": 1})
        one = await alice.subscribe(f"order:{other.id}")
        await alice.update("order", other.id, {"quantity": 5})
        event = await one.next(timeout=10)
        assert (event.event_type, event.seq, event.data["quantity"]) == ("order_updated", 2, 5)

        await orders.unsubscribe()
        assert orders.ended
        # An ended subscription's iteration ends instead of waiting for events that will not come; what it still
        # holds are the events of the second order that came before the unsubscribe.

        async def rest() -> list[str | None]:
            return [e.id async for e in orders]

        assert set(await asyncio.wait_for(rest(), 5)) <= {other.id}


async def test_subscribing_twice_to_a_topic_is_refused(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("alice")) as client:
        await client.subscribe("order")
        with pytest.raises(TidingsError) as twice:
            await client.subscribe("order")
        assert twice.value.code == "CONFLICT"
        with pytest.raises(TidingsError) as unknown:
            await client.subscribe("invoice")
        assert unknown.value.code == "NOT_FOUND"
        assert [s.topic for s in client.subscriptions()] == ["order"]


async def test_a_query_subscription_with_a_snapshot(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("erin")) as client:
        big = await client.create("order", {"productId": "E1", "quantity": 1, "totalAmount": 500})
        await client.create("order", {"productId": "E2", "quantity": 1, "totalAmount": 5})
        expensive = await client.subscribe("order", query={"field": "data.totalAmount", "gte": 100}, snapshot=True)
        assert [r.id for r in expensive.items or []] == [big.id]
        await client.update("order", big.id, {"totalAmount": 50})
        left = await expensive.next(timeout=10)
        assert (left.event_type, left.reason, left.id) == ("order_left", "unmatched", big.id)
