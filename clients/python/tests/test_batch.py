"""Atomic batches (protocol 1.2) through Client.batch and HttpClient.batch: against the real server, a batch that
applies with its events, one that fails at its third operation and applies nothing, one whose reply is lost to a
reconnect and is applied once, and one repeated with its requestId; against a fake server that states 1.1, the
refusal before anything is sent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tidings import Client, HttpClient, TidingsError

from conftest import Server


def _order(product_id: str, quantity: int = 1) -> dict[str, Any]:
    return {"productId": product_id, "quantity": quantity, "totalAmount": 10}


async def test_a_batch_applies_every_operation_with_its_events(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("bianca")) as client:
        kept = await client.create("order", _order("B-kept"))
        doomed = await client.create("order", _order("B-doomed"))
        orders = await client.subscribe("order")
        results = await client.batch([
            {"op": "create", "resourceType": "order", "data": _order("B-new", 2)},
            {"op": "update", "resourceType": "order", "id": kept.id, "patch": {"quantity": 3}, "expectedVersion": 1},
            {"op": "delete", "resourceType": "order", "id": doomed.id},
        ])
        assert [r.op for r in results] == ["create", "update", "delete"]
        created, updated, deleted = results
        assert created.data == {**_order("B-new", 2), "status": "pending"}  # type: ignore[union-attr]
        assert (updated.id, updated.version, updated.data["quantity"]) == (kept.id, 2, 3)  # type: ignore[union-attr]
        assert (deleted.id, deleted.version) == (doomed.id, 2)
        assert deleted.deleted_at > 0  # type: ignore[union-attr]

        # What the server holds now is what the results say.
        stored = await client.read("order", created.id)
        assert (stored.version, stored.data) == (1, created.data)  # type: ignore[union-attr]
        assert (await client.read("order", kept.id)).version == 2
        with pytest.raises(TidingsError) as gone:
            await client.read("order", doomed.id)
        assert gone.value.code == "NOT_FOUND"

        # One event per operation, in their order, at consecutive seqs: nothing of another change between them.
        events = [await orders.next(timeout=10) for _ in range(3)]
        assert [(e.event_type, e.id) for e in events] == [
            ("order_created", created.id), ("order_updated", kept.id), ("order_deleted", doomed.id)]
        assert [e.seq - events[0].seq for e in events] == [0, 1, 2]  # type: ignore[operator]


async def test_a_batch_whose_third_operation_fails_applies_nothing(shared_server: Server) -> None:
    async with Client(shared_server.url, shared_server.token("fiona")) as client:
        first = await client.create("order", _order("F-first"))
        second = await client.create("order", _order("F-second"))
        orders = await client.subscribe("order")
        with pytest.raises(TidingsError) as failed:
            await client.batch([
                {"op": "create", "resourceType": "order", "data": _order("F-never")},
                {"op": "update", "resourceType": "order", "id": first.id, "patch": {"quantity": 7}},
                {"op": "update", "resourceType": "order", "id": second.id, "patch": {"quantity": 9},
                 "expectedVersion": 5},
            ])
        assert failed.value.code == "CONFLICT"
        assert failed.value.details["index"] == 2
        assert failed.value.details["currentVersion"] == 1

        # Read back: neither the create nor the update before the failing operation was applied.
        assert (await client.list("order", filter={"productId": "F-never"})).items == []
        assert await client.read("order", first.id) == first
        assert await client.read("order", second.id) == second
        # And no event came of it: a topic's events arrive in order, so one of the batch would come before this one.
        marker = await client.create("order", _order("F-marker"))
        event = await orders.next(timeout=10)
        assert (event.event_type, event.id) == ("order_created", marker.id)

        # A field error points into its operation.
        with pytest.raises(TidingsError) as invalid:
            await client.batch([
                {"op": "update", "resourceType": "order", "id": first.id, "patch": {"quantity": 2}},
                {"op": "create", "resourceType": "order", "data": _order("F-bad", 0)},
            ])
        assert (invalid.value.code, invalid.value.details["index"]) == ("INVALID_PARAMS", 1)
        assert [e.pointer for e in invalid.value.errors] == ["/payload/operations/1/data/quantity"]
        assert (await client.read("order", first.id)).version == 1


async def test_a_batch_whose_reply_is_lost_is_sent_again_and_applied_once(server: Server) -> None:
    client = Client(server.url, server.token("rita"))
    await client.connect()
    try:
        target = await client.create("order", _order("R-target"))
        connection = client._connection
        sent: list[tuple[str, str]] = []
        lost = False
        call, dispatch = connection._call, connection._dispatch

        async def recording_call(type, payload, request_id, timeout, on_reply=None):  # type: ignore[no-untyped-def]
            sent.append((type, request_id))
            return await call(type, payload, request_id, timeout, on_reply)

        def lossy_dispatch(ws, text):  # type: ignore[no-untyped-def]
            # The first batch reply is dropped with the link, as when a link fails after the server answered: the
            # server applied the batch, and the client never hears of it on that connection.
            nonlocal lost
            if not lost and json.loads(text)["type"] == "batch":
                lost = True
                ws.transport.abort()
                return
            dispatch(ws, text)

        connection._call = recording_call  # type: ignore[method-assign]
        connection._dispatch = lossy_dispatch  # type: ignore[method-assign]
        states: list[str] = []
        client.on_state(states.append)
        # The update has no expected version: applied twice, it would leave the order at version 3.
        results = await asyncio.wait_for(client.batch([
            {"op": "create", "resourceType": "order", "data": _order("R-once")},
            {"op": "update", "resourceType": "order", "id": target.id, "patch": {"quantity": 4}},
        ]), 20)
        assert lost, "the first reply was lost"
        assert "reconnecting" in states
        batches = [rid for type, rid in sent if type == "batch"]
        assert len(batches) == 2 and batches[0] == batches[1], f"sent again with its requestId: {batches}"

        assert results[1].version == 2
        once = await client.list("order", filter={"productId": "R-once"})
        assert [r.id for r in once.items] == [results[0].id]
        now = await client.read("order", target.id)
        assert (now.version, now.data["quantity"]) == (2, 4)
    finally:
        await client.close()


async def test_a_batch_repeated_with_its_request_id_applies_nothing_again(shared_server: Server) -> None:
    token = shared_server.token("quinn")
    async with Client(shared_server.url, token) as client, Client(shared_server.url, token) as again:
        target = await client.create("order", _order("Q-target"))
        operations = [
            {"op": "create", "resourceType": "order", "data": _order("Q-once")},
            {"op": "update", "resourceType": "order", "id": target.id, "patch": {"quantity": 6}},
        ]
        first = await client.batch(operations, request_id="quinn-batch-1")
        # From another connection of the same user, as a retry after a restart of the app would be.
        assert await again.batch(operations, request_id="quinn-batch-1") == first
        with pytest.raises(TidingsError) as reused:
            await again.batch(operations[:1], request_id="quinn-batch-1")
        assert (reused.value.code, reused.value.details["reason"]) == ("CONFLICT", "request_id_reused")
        assert len((await client.list("order", filter={"productId": "Q-once"})).items) == 1
        assert (await client.read("order", target.id)).version == 2


async def test_a_batch_over_http_with_its_idempotency_key(shared_server: Server) -> None:
    async with HttpClient(shared_server.url, shared_server.token("hugo")) as http:
        target = await http.create("order", _order("H-target"))
        operations = [
            {"op": "create", "resourceType": "order", "data": _order("H-new")},
            {"op": "delete", "resourceType": "order", "id": target.id, "expectedVersion": 1},
        ]
        results = await http.batch(operations, idempotency_key="hugo-batch-1")
        assert http.last_status == 200
        assert [r.op for r in results] == ["create", "delete"] and results[1].id == target.id
        assert await http.batch(operations, idempotency_key="hugo-batch-1") == results
        assert len((await http.list("order", filter={"productId": "H-new"})).items) == 1

        # A failing operation: its status, its index, and pointers without /payload; nothing applied.
        with pytest.raises(TidingsError) as failed:
            await http.batch([
                {"op": "create", "resourceType": "order", "data": _order("H-never")},
                {"op": "update", "resourceType": "order", "id": results[0].id, "patch": {"quantity": 0}},
            ])
        assert (failed.value.status, failed.value.code, failed.value.details["index"]) == (400, "INVALID_PARAMS", 1)
        assert [e.pointer for e in failed.value.errors] == ["/operations/1/patch/quantity"]
        assert (await http.list("order", filter={"productId": "H-never"})).items == []


async def test_a_server_that_states_1_1_gets_no_batch() -> None:
    received: list[dict[str, Any]] = []

    async def old_server(ws: ServerConnection) -> None:
        # Answers connect as a 1.1 server would, auth and ping; what else it is sent, it only records.
        async for text in ws:
            message = json.loads(text)
            received.append(message)
            payloads = {
                "connect": {"protocolVersion": "1.1", "sessionId": "s", "authTimeoutMs": 10000,
                            "heartbeat": {"pingIntervalMs": 25000, "idleTimeoutMs": 60000},
                            "limits": {"maxMessageBytes": 65536, "maxSubscriptions": 100,
                                       "rateLimit": {"messagesPerSecond": 50, "burst": 100}}},
                "auth": {"userId": "u", "roles": [], "expiresAt": 4102444800000},
                "ping": {},
            }
            if message["type"] in payloads:
                reply_type = {"auth": "auth_success", "ping": "pong"}.get(message["type"], message["type"])
                await ws.send(json.dumps({"type": reply_type, "timestamp": 1764000000000,
                                          "requestId": message["requestId"], "payload": payloads[message["type"]]}))

    async with serve(old_server, "127.0.0.1", 0) as fake:
        port = fake.sockets[0].getsockname()[1]
        async with Client(f"ws://127.0.0.1:{port}/ws", "t") as client:
            assert client.server_version == "1.1"
            with pytest.raises(TidingsError) as refused:
                await client.batch([{"op": "delete", "resourceType": "order", "id": "ORD-1"}])
            assert refused.value.code == "UNSUPPORTED_VERSION"
            assert refused.value.details["serverVersion"] == "1.1"
            assert "batch needs protocol 1.2" in refused.value.message
            await client.ping()
    assert [m["type"] for m in received] == ["connect", "auth", "ping", "disconnect"]
