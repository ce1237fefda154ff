"""The HTTP API client against the real server: Idempotency-Key (the same key twice creates once), If-Match (a stale
version is refused), errors with their codes, and changes over HTTP that reach WebSocket subscribers."""

from __future__ import annotations

import pytest

from tidings import Client, HttpClient, TidingsError
from tidings.http import http_url

from conftest import Server


def test_the_http_address_of_a_websocket_address() -> None:
    assert http_url("ws://127.0.0.1:8080/ws") == "http://127.0.0.1:8080"
    assert http_url("wss://example.com/ws") == "https://example.com"


async def test_the_same_idempotency_key_twice_creates_once(shared_server: Server) -> None:
    async with HttpClient(shared_server.url, shared_server.token("hana")) as http:
        data = {"productId": "P-idem", "quantity": 2, "totalAmount": 10}
        first = await http.create("order", data, idempotency_key="hana-create-1")
        assert http.last_status == 201
        again = await http.create("order", data, idempotency_key="hana-create-1")
        assert http.last_status == 200, "a replay answers 200, not 201"
        assert again == first
        page = await http.list("order", filter={"productId": "P-idem"})
        assert [r.id for r in page.items] == [first.id], "the second request created nothing"

        other = await http.create("order", data)
        assert other.id != first.id, "a create without a given key gets a fresh one"
        with pytest.raises(TidingsError) as reused:
            await http.create("order", {**data, "quantity": 3}, idempotency_key="hana-create-1")
        assert (reused.value.status, reused.value.code) == (409, "CONFLICT")
        assert reused.value.details["reason"] == "request_id_reused"


async def test_if_match_refuses_a_stale_version(shared_server: Server) -> None:
    async with HttpClient(shared_server.url, shared_server.token("ivan")) as http:
        order = await http.create("order", {"productId": "P-match", "quantity": 1, "totalAmount": 1})
        updated = await http.update("order", order.id, {"quantity": 2}, expected_version=1)
        assert (updated.version, updated.data["quantity"]) == (2, 2)

        with pytest.raises(TidingsError) as stale:
            await http.update("order", order.id, {"quantity": 9}, expected_version=1)
        assert (stale.value.status, stale.value.code) == (409, "CONFLICT")
        assert stale.value.details["currentVersion"] == 2
        assert (await http.read("order", order.id)).data["quantity"] == 2, "the stale update changed nothing"

        with pytest.raises(TidingsError) as stale_delete:
            await http.delete("order", order.id, expected_version=1)
        assert stale_delete.value.code == "CONFLICT"
        deleted = await http.delete("order", order.id, expected_version=2)
        assert deleted.version == 3
        with pytest.raises(TidingsError) as gone:
            await http.read("order", order.id)
        assert (gone.value.status, gone.value.code) == (404, "NOT_FOUND")


async def test_http_errors_carry_the_code_and_the_pointers(shared_server: Server) -> None:
    async with HttpClient(shared_server.url, shared_server.token("judy")) as http:
        with pytest.raises(TidingsError) as bad:
            await http.create("order", {"productId": "P", "quantity": 0, "totalAmount": 1})
        assert (bad.value.status, bad.value.code) == (400, "INVALID_PARAMS")
        assert [e.pointer for e in bad.value.errors] == ["/data/quantity"]
    async with HttpClient(shared_server.url, "not-a-jwt") as anonymous:
        with pytest.raises(TidingsError) as refused:
            await anonymous.list("order")
        assert (refused.value.status, refused.value.code, refused.value.details["reason"]) == (
            401, "UNAUTHORIZED", "malformed")


async def test_a_list_filter_and_query_over_http(shared_server: Server) -> None:
    async with HttpClient(shared_server.url, shared_server.token("kim")) as http:
        await http.create("order", {"productId": "42", "quantity": 1, "totalAmount": 1})
        await http.create("order", {"productId": "K2", "quantity": 3, "totalAmount": 150})
        # "42" would read as a number unless quoted; the client quotes it.
        assert [r.data["productId"] for r in (await http.list("order", filter={"productId": "42"})).items] == ["42"]
        assert [r.data["quantity"] for r in (await http.list("order", filter={"quantity": 3})).items] == [3]
        big = await http.list("order", query={"field": "data.totalAmount", "gte": 100}, count=True)
        assert [r.data["productId"] for r in big.items] == ["K2"] and big.total == 1


async def test_a_change_over_http_reaches_a_websocket_subscriber(shared_server: Server) -> None:
    token = shared_server.token("lena")
    async with Client(shared_server.url, token) as client, HttpClient(shared_server.url, token) as http:
        orders = await client.subscribe("order")
        order = await http.create("order", {"productId": "P-ws", "quantity": 1, "totalAmount": 1})
        event = await orders.next(timeout=10)
        assert (event.event_type, event.id) == ("order_created", order.id)
