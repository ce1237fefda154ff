"""A resume from before the oldest event the server keeps is reported as a Gap, so that the caller reads again."""

from __future__ import annotations

import asyncio
import tempfile

from tidings import Client, Gap, Subscription

from conftest import Server

# The server keeps two events per type and prunes every 20 ms.
SMALL_LOG = {"TIDINGS_EVENTS__RETAIN_COUNT": "2", "TIDINGS_EVENTS__PRUNE_INTERVAL_MS": "20"}


async def _pruned_after(client: Client, since: int, attempts: int = 500) -> Subscription:
    """Subscribes with `since` until the server says it can no longer replay from there (the pruner runs on its own
    schedule); returns that subscription."""
    for _ in range(attempts):
        sub = await client.subscribe("order", since=since)
        if sub.recovered is False:
            return sub
        await sub.unsubscribe()
    raise AssertionError("the server never pruned the events after since")


async def test_a_subscription_beyond_the_retained_log_reports_a_gap() -> None:
    with tempfile.TemporaryDirectory() as data:
        server = Server(data, SMALL_LOG).start()
        try:
            async with Client(server.url, server.token("alice")) as alice, \
                    Client(server.url, server.token("root", ("admin",))) as watcher:
                for n in range(5):
                    await alice.create("order", {"productId": f"P{n}", "quantity": 1, "totalAmount": 1})
                sub = await _pruned_after(watcher, 1)
                assert sub.gaps == [Gap(topic="order", subscription_id="order", since=1, seq=5)]
                # Live events go on after the reply's seq.
                assert sub.last_seq == 5
                order = await alice.create("order", {"productId": "P5", "quantity": 1, "totalAmount": 1})
                event = await sub.next(timeout=10)
                assert (event.id, event.seq) == (order.id, 6)
        finally:
            server.kill()


async def test_a_resume_after_a_long_absence_reports_a_gap() -> None:
    gate = asyncio.Event()

    async def retry_wait(attempt: int, delay: float) -> None:
        await gate.wait()

    with tempfile.TemporaryDirectory() as data:
        server = Server(data, SMALL_LOG).start()
        subscriber = Client(lambda: server.url, get_token=lambda: server.token("root", ("admin",)),
                            retry_wait=retry_wait)
        try:
            async with Client(lambda: server.url, server.token("alice"), retry_base=0.05) as alice:
                await subscriber.connect()
                orders = await subscriber.subscribe("order")
                gaps: list[Gap] = []
                orders.on_gap(gaps.append)
                await alice.create("order", {"productId": "P0", "quantity": 1, "totalAmount": 1})
                assert (await orders.next(timeout=10)).seq == 1

                await asyncio.to_thread(server.kill)
                await subscriber.wait_for_state("reconnecting", 10)
                await asyncio.to_thread(server.restart)
                await alice.wait_for_state("connected", 15)
                for n in range(1, 6):
                    await alice.create("order", {"productId": f"P{n}", "quantity": 1, "totalAmount": 1})
                # The resume must find the log pruned: a probe of the same `since` shows when it is.
                await (await _pruned_after(alice, 1)).unsubscribe()

                gate.set()
                await subscriber.wait_for_state("connected", 15)
                # The gap is reported while the resume's reply is handled, before the client is connected.
                assert gaps == [Gap(topic="order", subscription_id="order", since=1, seq=6)]
                assert orders.gaps == gaps and orders.recovered is False and orders.last_seq == 6
                # Nothing of the lost stretch comes; the next live event does.
                order = await alice.create("order", {"productId": "P6", "quantity": 1, "totalAmount": 1})
                event = await orders.next(timeout=10)
                assert (event.id, event.seq) == (order.id, 7)
        finally:
            await subscriber.close()
            server.kill()
