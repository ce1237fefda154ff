"""Resume after the server drops the connection: SIGKILL (or SIGTERM) and restart while orders keep coming, then
every event exactly once, in order, and no create applied twice."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tidings import Client, Event, HttpClient

from conftest import Server


async def _wait_for(check, changed: asyncio.Event, timeout: float, what: str) -> None:
    """Returns once check() holds, asked again each time `changed` is set; fails after the timeout."""

    async def holds() -> None:
        while not check():
            changed.clear()
            await changed.wait()

    try:
        await asyncio.wait_for(holds(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_restart_delivers_every_event_once_in_order(server: Server, sig: int) -> None:
    # The subscriber's first reconnection waits until the test opens the gate, so that orders are created while it
    # is away and must come from the replay after `since`.
    gate = asyncio.Event()

    async def retry_wait(attempt: int, delay: float) -> None:
        if attempt == 1:
            await gate.wait()

    token_calls = 0

    def get_token() -> str:
        nonlocal token_calls
        token_calls += 1
        return server.token("root", ("admin",))

    subscriber = Client(lambda: server.url, get_token=get_token, retry_wait=retry_wait)
    producer = Client(lambda: server.url, server.token("alice"), request_timeout=30, retry_base=0.05)
    await subscriber.connect()
    await producer.connect()
    try:
        orders = await subscriber.subscribe("order")
        events: list[Event] = []
        got_event = asyncio.Event()

        async def consume() -> None:
            async for event in orders:
                events.append(event)
                got_event.set()

        consumer = asyncio.create_task(consume())

        # Creates run one after another until stopped; each keeps its requestId across the reconnect.
        created: list[str] = []
        created_one = asyncio.Event()
        stop = False

        async def produce() -> None:
            while not stop:
                order = await producer.create("order", {"productId": f"P{len(created)}", "quantity": 1, "totalAmount": 1})
                created.append(order.id)
                created_one.set()

        loop = asyncio.create_task(produce())
        await _wait_for(lambda: len(events) >= 5, got_event, 10, "five events before the kill")

        # SIGKILL drops the connections without a word; SIGTERM shuts the server down with `disconnect` 1001.
        await asyncio.to_thread(server.kill, sig)
        await subscriber.wait_for_state("reconnecting", 10)
        before_restart = len(created)
        await asyncio.to_thread(server.restart)

        # While the subscriber is away: the producer reconnects and goes on, and bob creates over HTTP.
        await producer.wait_for_state("connected", 15)
        await _wait_for(lambda: len(created) >= before_restart + 3, created_one, 15, "creates after the restart")
        async with HttpClient(server.http_url, server.token("bob")) as bob:
            bobs = [(await bob.create("order", {"productId": f"B{i}", "quantity": 1, "totalAmount": 2})).id
                    for i in range(3)]
        assert subscriber.state == "reconnecting"
        events_before_resume = len(events)
        gate.set()
        await subscriber.wait_for_state("connected", 15)
        stop = True
        await asyncio.wait_for(loop, 30)

        # Every order in storage, read by the admin, page by page.
        stored: list[str] = []
        cursor = None
        while True:
            page = await subscriber.list("order", limit=100, cursor=cursor)
            stored += [r.id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        ids = created + bobs
        assert len(set(ids)) == len(ids), "each create made its own order"
        assert sorted(stored) == sorted(ids), "no create was applied twice, and none was lost"

        await _wait_for(lambda: len(events) >= len(stored), got_event, 15, "every event at the subscriber")
        # A duplicate would come before the pong: the server sends a connection's messages in order.
        await subscriber.ping()
        seqs = [e.seq for e in events]
        assert all(a < b for a, b in zip(seqs, seqs[1:])), f"events in order: {seqs}"  # type: ignore[operator]
        assert sorted(e.id for e in events) == sorted(stored), "every event exactly once"  # type: ignore[type-var]
        assert all(e.event_type == "order_created" for e in events)
        assert len(events) > events_before_resume + 3, "the replay after since brought what was missed"
        assert orders.gaps == [] and orders.recovered is True
        assert token_calls >= 2, "the subscriber asked get_token again to sign in again"
        consumer.cancel()
    finally:
        await subscriber.close()
        await producer.close()
