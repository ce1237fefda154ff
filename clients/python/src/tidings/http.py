"""The HTTP API client (docs/http-api.md): resources with Idempotency-Key and If-Match, and notifications."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Mapping, Sequence

import httpx

from . import __version__
from .models.server.batch import OperationResult as BatchResult
from .models.server.batch import Payload as BatchReply
from .models.server.delete import Payload as Deleted
from .models.server.read import Resource, ResourceList
from .protocol import TidingsError

#: HTTP statuses after which a request may be sent again as it was (docs/http-api.md, Errors): nothing was done.
RETRYABLE_STATUSES = frozenset({429, 500, 503})


def http_url(ws_url: str) -> str:
    """The HTTP address of the server whose WebSocket address this is: ws://host:port/ws becomes http://host:port."""
    base = ws_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return base[: -len("/ws")] if base.endswith("/ws") else base.rstrip("/")


def _filter_value(value: Any) -> str:
    """A filter value as the query string reads it back: literals and numbers as JSON, strings that would read as
    one of those in double quotes, other strings as they are."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value if not value.startswith('"') else json.dumps(value)
        return json.dumps(value)
    return json.dumps(value)


class HttpClient:
    """The HTTP API of a Tidings server, for scripts and back ends that want one request and one answer.

    `token` is a user's JWT (every resource call is made as that user); `api_key` is one of the server's
    `api_keys`, for notify(). A create and a batch carry an Idempotency-Key (a new UUID unless given), so that they
    are sent again after a lost answer, a 429, 500 or 503 without applying twice; `retries` bounds how often.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = http_url(base_url) if base_url.startswith("ws") else base_url.rstrip("/")
        self.token = token
        self.api_key = api_key
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"user-agent": f"tidings-python/{__version__}"},
        )
        #: The HTTP status of the last answer, such as 201 for a create and 200 for a create's replay.
        self.last_status: int | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        safe: bool = False,
    ) -> Any:
        """Sends a request and returns its JSON body; raises TidingsError with the server's code and details.

        A `safe` request (one that cannot apply twice) is sent again after a transport failure or a 429, 500 or 503,
        after the server's Retry-After when it gave one.
        """
        sent_headers = dict(headers or {})
        if self.token is not None:
            sent_headers["authorization"] = f"Bearer {self.token}"
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"))
            sent_headers.setdefault("content-type", "application/json")
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, path, content=content, params=params, headers=sent_headers)
            except httpx.TransportError as error:
                if safe and attempt <= self.retries:
                    continue
                # Like a WebSocket request in flight at a close, it may or may not have been applied.
                raise TidingsError("CONNECTION_LOST", f"{method} {path}: {error}") from error
            self.last_status = response.status_code
            if response.status_code in RETRYABLE_STATUSES and safe and attempt <= self.retries:
                retry_after = response.headers.get("retry-after", "")
                await asyncio.sleep(min(float(retry_after), 10.0) if retry_after.isdigit() else 0.2 * attempt)
                continue
            if response.is_success:
                return response.json()
            raise self._error(response)

    @staticmethod
    def _error(response: httpx.Response) -> TidingsError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or "code" not in body:
            # A 405 has no body, and a proxy in front of the server may answer in HTML.
            return TidingsError("INTERNAL", f"HTTP {response.status_code}", None, status=response.status_code)
        return TidingsError(str(body["code"]), str(body.get("message", "")), body.get("details"),
                            status=response.status_code)

    @staticmethod
    def _if_match(expected_version: int | None) -> dict[str, str]:
        # The ETag of a resource is its version in quotes; If-Match with it makes the change conditional.
        return {} if expected_version is None else {"if-match": f'"{expected_version}"'}

    async def create(self, resource_type: str, data: dict[str, Any], *, idempotency_key: str | None = None) -> Resource:
        """Creates a resource. The Idempotency-Key (a new UUID unless given) makes a repeat of the same create answer
        with the first one's resource (status 200 instead of 201) rather than create another."""
        key = idempotency_key or str(uuid.uuid4())
        body = await self._call("POST", f"/api/v1/resources/{resource_type}", body=data,
                                headers={"idempotency-key": key}, safe=True)
        return Resource.model_validate(body)

    async def read(self, resource_type: str, id: str) -> Resource:
        """Reads one resource."""
        return Resource.model_validate(await self._call("GET", f"/api/v1/resources/{resource_type}/{id}", safe=True))

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
        params: dict[str, str] = {f"filter.{name}": _filter_value(value) for name, value in (filter or {}).items()}
        if query is not None:
            params["query"] = json.dumps(query, separators=(",", ":"))
        if order_by is not None:
            params["orderBy"] = order_by if isinstance(order_by, str) else ",".join(order_by)
        if limit is not None:
            params["limit"] = str(limit)
        if cursor is not None:
            params["cursor"] = cursor
        if fields is not None:
            params["fields"] = ",".join(fields)
        if count is not None:
            params["count"] = "true" if count else "false"
        body = await self._call("GET", f"/api/v1/resources/{resource_type}", params=params, safe=True)
        return ResourceList.model_validate(body)

    async def update(
        self, resource_type: str, id: str, patch: dict[str, Any], *, expected_version: int | None = None
    ) -> Resource:
        """Applies a JSON merge patch to a resource's data. With `expected_version` it goes as If-Match, and a
        resource at another version is refused with CONFLICT (status 409, details.currentVersion); only such an
        update is sent again after a failure, as only it cannot apply twice."""
        headers = {"content-type": "application/merge-patch+json", **self._if_match(expected_version)}
        body = await self._call("PATCH", f"/api/v1/resources/{resource_type}/{id}", body=patch, headers=headers,
                                safe=expected_version is not None)
        return Resource.model_validate(body)

    async def delete(self, resource_type: str, id: str, *, expected_version: int | None = None) -> Deleted:
        """Deletes a resource; `expected_version` works as for update."""
        body = await self._call("DELETE", f"/api/v1/resources/{resource_type}/{id}",
                                headers=self._if_match(expected_version), safe=expected_version is not None)
        return Deleted.model_validate(body)

    async def batch(
        self, operations: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[BatchResult]:
        """`POST /api/v1/batch`: creates, updates and deletes of any types in one transaction, or none of them.

        The operations and results are those of Client.batch. A failing operation's error carries its HTTP status,
        `details["index"]` and pointers under `/operations/{index}` (no `/payload` over HTTP). The Idempotency-Key
        (a new UUID unless given) makes a repeat of the same batch answer with the first one's results and apply
        nothing, so the batch is sent again after a lost answer, a 429, 500 or 503; the same key with other
        operations is CONFLICT (`request_id_reused`).
        """
        key = idempotency_key or str(uuid.uuid4())
        body = await self._call("POST", "/api/v1/batch", body={"operations": [dict(op) for op in operations]},
                                headers={"idempotency-key": key}, safe=True)
        return BatchReply.model_validate(body).results

    async def notify(
        self,
        to: list[str] | str,
        title: str,
        *,
        body: str = "",
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Sends a notification to these users (or "*": every user the server knows), with the API key.

        Returns `{id, recipients}`. Each recipient gets it on every open connection, or at their next sign-in.
        """
        if self.api_key is None:
            raise TidingsError("UNAUTHORIZED", "notify needs one of the server's api_keys")
        message: dict[str, Any] = {"to": to, "title": title, "body": body, "level": level}
        if data is not None:
            message["data"] = data
        result: dict[str, Any] = await self._call("POST", "/api/v1/notifications", body=message,
                                                  headers={"x-api-key": self.api_key})
        return result
