"""The connection's life against the real server: a kick that forbids reconnecting, a subscription the server ends,
a token refreshed before it expires, and requests failed or retried across a lost connection."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tidings import Client, TidingsError

from conftest import API_KEY, Server


async def test_a_kick_closes_the_client_for_good(server: Server) -> None:
    client = Client(server.url, server.token("alice"))
    await client.connect()
    try:
        orders = await client.subscribe("order")
        async with httpx.AsyncClient(base_url=server.http_url, headers={"x-api-key": API_KEY}) as admin:
            answer = await admin.delete(f"/api/v1/admin/connections/{client.session_id}", params={"reason": "bye"})
            assert answer.status_code in (200, 204), answer.text
        # 4502 says not to reconnect: the client closes, and what waited on it ends.
        await client.wait_for_state("closed", 10)
        assert orders.ended and orders.end_reason is not None
        assert orders.end_reason.details.get("code") == 4502
        with pytest.raises(TidingsError) as closed:
            await client.read("order", "ORD-1")
        assert closed.value.code == "CLOSED"
    finally:
        await client.close()


async def test_the_server_ends_the_subscription_of_a_deleted_resource(server: Server) -> None:
    async with Client(server.url, server.token("alice")) as client:
        order = await client.create("order", {"productId": "P-end", "quantity": 1, "totalAmount": 1})
        one = await client.subscribe(f"order:{order.id}")
        await client.delete("order", order.id)
        deleted = await one.next(timeout=10)
        assert deleted.event_type == "order_deleted"

        async def rest() -> list[object]:
            return [e async for e in one]

        # After the _deleted event the server ends the subscription with an unsubscribe push (NOT_FOUND).
        assert await asyncio.wait_for(rest(), 10) == []
        assert one.end_reason is not None and one.end_reason.code == "NOT_FOUND"
        assert client.subscriptions() == []


async def test_a_token_is_refreshed_on_the_same_connection(server: Server) -> None:
    calls = 0
    refreshed = asyncio.Event()

    async def get_token() -> str:
        nonlocal calls
        calls += 1
        if calls >= 2:
            refreshed.set()
        return await asyncio.to_thread(server.token, "alice")

    # The refresh is due at once (its wait is bounded below by a second), so the second sign-in comes quickly.
    client = Client(server.url, get_token=get_token, refresh_before_expiry=7200)
    states: list[str] = []
    client.on_state(states.append)
    await client.connect()
    try:
        session = client.session_id
        await asyncio.wait_for(refreshed.wait(), 10)
        assert await client.ping() >= 0
        assert client.session_id == session and states == ["connecting", "connected"], "no reconnect was needed"
    finally:
        await client.close()


async def test_requests_in_flight_when_the_connection_is_lost(server: Server) -> None:
    # The server is stopped (SIGSTOP) so that requests stay in flight, then killed. An update without an expected
    # version may or may not have been applied, so it fails with CONNECTION_LOST; an update with one, and a create
    # (deduplicated by its requestId), go out again on the next connection and succeed.
    gate = asyncio.Event()

    async def retry_wait(attempt: int, delay: float) -> None:
        await gate.wait()

    client = Client(lambda: server.url, server.token("alice"), retry_wait=retry_wait, request_timeout=30)
    await client.connect()
    try:
        order = await client.create("order", {"productId": "P-lost", "quantity": 1, "totalAmount": 1})
        server.freeze()
        unsafe = asyncio.create_task(client.update("order", order.id, {"quantity": 2}))
        safe = asyncio.create_task(client.update("order", order.id, {"productId": "P-safe"}, expected_version=1))
        created = asyncio.create_task(client.create("order", {"productId": "P-later", "quantity": 1, "totalAmount": 1}))

        async def in_flight() -> None:
            while len(client._connection.pending) < 3:
                await asyncio.sleep(0)

        await asyncio.wait_for(in_flight(), 10)
        server.kill()
        with pytest.raises(TidingsError) as lost:
            await asyncio.wait_for(unsafe, 10)
        assert lost.value.code == "CONNECTION_LOST"

        await asyncio.to_thread(server.restart)
        gate.set()
        updated = await asyncio.wait_for(safe, 15)
        assert (updated.version, updated.data["productId"]) == (2, "P-safe")
        later = await asyncio.wait_for(created, 15)
        assert later.data["productId"] == "P-later"
        # The stopped server never read the unsafe update, and nothing sent it again.
        assert (await client.read("order", order.id)).data["quantity"] == 1
        assert len((await client.list("order", filter={"productId": "P-later"})).items) == 1
    finally:
        await client.close()


class _Count:
    """Counts the messages from the server that hold a word, as the client reads them."""

    def __init__(self, client: Client, word: str) -> None:
        self.seen = 0
        self._changed = asyncio.Event()
        connection = client._connection
        dispatch = connection._dispatch

        def counting(ws, text):  # type: ignore[no-untyped-def]
            if word in text:
                self.seen += 1
                self._changed.set()
            dispatch(ws, text)

        connection._dispatch = counting  # type: ignore[method-assign]

    async def reach(self, count: int, timeout: float) -> None:
        async def reached() -> None:
            while self.seen < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), timeout)


async def test_the_client_answers_the_servers_pings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Pings every 100 ms and a close after 400 ms of silence: a client that did not answer would be cut off
    # (4000) and come back as a new session long before the sixth ping.
    fast = Server(str(tmp_path), {"TIDINGS_HEARTBEAT__PING_INTERVAL_MS": "100", "TIDINGS_HEARTBEAT__IDLE_TIMEOUT_MS": "400"})
    fast.start()
    try:
        client = Client(fast.url, fast.token("alice"))
        pings = _Count(client, '"type":"ping"')
        states: list[str] = []
        client.on_state(states.append)
        await client.connect()
        session = client.session_id
        changed = asyncio.Event()
        client.on_state(lambda state: changed.set())

        await pings.reach(6, 10)
        assert not changed.is_set() and client.session_id == session, states
        assert await client.ping() >= 0
        await client.close()
    finally:
        fast.kill()


async def test_a_refused_request_is_sent_again_after_the_wait_the_server_asks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    limited = Server(str(tmp_path), {"TIDINGS_LIMITS__RATE_BURST": "5", "TIDINGS_LIMITS__RATE_PER_SECOND": "20"})
    limited.start()
    try:
        async with Client(limited.url, limited.token("alice")) as client:
            refused = _Count(client, "RATE_LIMITED")
            # Thirty reads at once against a bucket of five: the server refuses most, and each goes out again
            # after its retryAfterMs until all are answered.
            order = await client.create("order", {"productId": "P-rate", "quantity": 1, "totalAmount": 1})
            reads = await asyncio.gather(*(client.read("order", order.id) for _ in range(30)))
            assert all(r.id == order.id for r in reads)
            assert refused.seen > 0, "the server refused nothing: the test did not reach the limit"
            assert client.state == "connected"
    finally:
        limited.kill()


async def test_an_expired_token_ends_a_client_that_cannot_renew_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = Server(str(tmp_path), {"TIDINGS_AUTH__TOKEN_GRACE_MS": "200"})
    short.start()
    try:
        client = Client(short.url, short.token("alice", ttl="2s"))
        await client.connect()
        orders = await client.subscribe("order")
        # The server pushes TOKEN_EXPIRED, and after the grace closes with 4501, which says not to reconnect.
        await client.wait_for_state("closed", 15)
        assert orders.end_reason is not None and orders.end_reason.details.get("code") == 4501
    finally:
        short.kill()


async def test_get_token_keeps_a_session_past_its_tokens_expiry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = Server(str(tmp_path), {"TIDINGS_AUTH__TOKEN_GRACE_MS": "1000"})
    short.start()
    calls = 0
    fourth = asyncio.Event()

    async def get_token() -> str:
        nonlocal calls
        calls += 1
        if calls >= 4:
            fourth.set()
        return await asyncio.to_thread(short.token, "alice", (), "2s")

    # Tokens of two seconds, each renewed 0.8 s before it expires: by the fourth (after some 3.6 s), the first
    # token's expiry and grace (3 s) are over, and only the renewals on the same connection kept the session.
    client = Client(short.url, get_token=get_token, refresh_before_expiry=0.8)
    states: list[str] = []
    client.on_state(states.append)
    try:
        await client.connect()
        session = client.session_id
        await asyncio.wait_for(fourth.wait(), 20)
        assert await client.ping() >= 0
        assert client.session_id == session and states == ["connecting", "connected"]
    finally:
        await client.close()
        short.kill()


async def test_resubscriptions_refused_for_the_rate_are_sent_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A bucket of five: connect, auth and eight resumed subscriptions after a restart exceed it, and the refused
    # ones must go out again rather than end their subscriptions.
    limited = Server(str(tmp_path), {"TIDINGS_LIMITS__RATE_BURST": "5", "TIDINGS_LIMITS__RATE_PER_SECOND": "20"})
    limited.start()
    client = Client(lambda: limited.url, limited.token("alice"), retry_base=0.05, request_timeout=30)
    try:
        await client.connect()
        orders = [await client.create("order", {"productId": f"R{n}", "quantity": 1, "totalAmount": 1})
                  for n in range(8)]
        subs = [await client.subscribe(f"order:{order.id}") for order in orders]
        refused = _Count(client, "RATE_LIMITED")
        await asyncio.to_thread(limited.kill, signal.SIGTERM)
        await client.wait_for_state("reconnecting", 10)
        await asyncio.to_thread(limited.restart)
        await client.wait_for_state("connected", 20)
        assert refused.seen > 0, "the server refused nothing: the test did not reach the limit"
        assert not any(sub.ended for sub in subs) and len(client.subscriptions()) == 8
        for order in orders:
            await client.update("order", order.id, {"quantity": 2})
        events = [await sub.next(timeout=10) for sub in subs]
        assert [(e.id, e.version) for e in events] == [(o.id, 2) for o in orders]
    finally:
        await client.close()
        limited.kill()
