"""The connection's life: open, connect, auth and resume, read and route messages, and reconnect with backoff."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WebSocketState

from .protocol import PROTOCOL_VERSION, Decoded, TidingsError, backoff_delay, decode_server, should_reconnect

if TYPE_CHECKING:
    from .client import Client
    from .subscriptions import Subscription

#: The code a WebSocket reports when a connection ended without a close frame (RFC 6455, 7.1.5).
ABNORMAL_CLOSURE = 1006

#: The server closes with this code when the token expired (docs/protocol.md, section 11).
TOKEN_EXPIRED_CLOSE = 4501

#: How often, in seconds, the reader looks up from waiting to check the link: its state and the server's silence.
READ_TICK = 1.0

#: The largest message the client reads; the server's list pages and events may be larger than what it accepts.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class Lost(Exception):
    """The connection closed before a reply came: with the close code, its reason and whether to reconnect."""

    def __init__(self, code: int, reason: str, again: bool) -> None:
        super().__init__(f"the connection closed ({code} {reason})")
        self.code = code
        self.reason = reason
        self.again = again


def _now_ms() -> int:
    return int(time.time() * 1000)


class Connection:
    """What the Client asks of its connection: one socket at a time, and a new one after each close."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ws: ClientConnection | None = None
        self.pending: dict[str, asyncio.Future[Decoded]] = {}
        self.hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        # Set while the socket is signed in and resumed: requests wait for it.
        self.ready = asyncio.Event()
        self.closed = False
        self.runner: asyncio.Task[None] | None = None
        self.refresh: asyncio.Task[None] | None = None
        # The server's `disconnect` on the current socket, which decides over the close code whether to reconnect.
        self.goodbye: tuple[int, str, bool] | None = None
        # The longest silence of the server before the link counts as dead: its ping interval plus a margin.
        self.silence: float | None = None
        self.background: set[asyncio.Task[Any]] = set()

    # -- the loop of connections ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.closed = False
        self.ready = asyncio.Event()
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.runner = asyncio.create_task(self._run(first))
        self.runner.add_done_callback(self._runner_done)
        await first

    def _runner_done(self, runner: asyncio.Task[None]) -> None:
        # The loop of connections ends only when the client closes; anything else is a bug to report loudly.
        if not runner.cancelled() and runner.exception() is not None:
            self.client.logger.error("the connection loop failed", exc_info=runner.exception())

    async def _run(self, first: asyncio.Future[None]) -> None:
        client = self.client
        attempt = 0
        while not self.closed:
            try:
                reader = await self._open()
            except Exception as error:
                client.logger.warning("connection attempt %d failed: %s", attempt + 1, error)
                if isinstance(error, Lost):
                    # The socket closed during the handshake, as after `disconnect` 4503 (too many connections).
                    error = TidingsError("CONNECTION_LOST", str(error), {"code": error.code, "reconnect": error.again})
                if not first.done():
                    # The first attempt fails fast, so that a wrong address or token shows at once.
                    first.set_exception(error)
                    await self.shutdown(TidingsError("CLOSED", f"the first connection failed: {error}"))
                    return
                # A rejected token or version, an expired token that no get_token can renew, and a close that says
                # not to come back end the client: trying again would only repeat them.
                expired = isinstance(error, TidingsError) and error.code == "TOKEN_EXPIRED" and client.get_token is None
                final = expired or isinstance(error, TidingsError) and (
                    error.code in ("UNAUTHORIZED", "UNSUPPORTED_VERSION") or error.details.get("reconnect") is False)
                if final:
                    await self.shutdown(error)  # type: ignore[arg-type]
                    return
                attempt += 1
                if not await self._wait(attempt):
                    return
                continue
            attempt = 0
            if not first.done():
                first.set_result(None)
            client._set_state("connected")
            lost = await reader
            client.logger.debug("the reader ended: %s", lost)
            if self.closed:
                return
            client.logger.info("connection closed (%d %s); reconnect: %s", lost.code, lost.reason, lost.again)
            if not lost.again:
                await self.shutdown(TidingsError("CONNECTION_LOST", str(lost), {"code": lost.code}))
                return
            attempt += 1
            if not await self._wait(attempt):
                return

    async def _wait(self, attempt: int) -> bool:
        """Waits before reconnection attempt `attempt`; False when the client closed or gave up meanwhile."""
        client = self.client
        if client.max_attempts is not None and attempt > client.max_attempts:
            await self.shutdown(TidingsError("CLOSED", f"gave up after {client.max_attempts} reconnection attempts"))
            return False
        client._set_state("reconnecting")
        delay = backoff_delay(attempt, client.retry_base, client.retry_max)
        if client.retry_wait is not None:
            await client.retry_wait(attempt, delay)
        else:
            await asyncio.sleep(delay)
        return not self.closed

    async def _open(self) -> asyncio.Task[Lost]:
        """One attempt: open the socket, `connect`, `auth`, resume the subscriptions; returns the socket's reader."""
        client = self.client
        url = client.url() if callable(client.url) else client.url
        ws = await connect(url, open_timeout=client.connect_timeout, ping_interval=None, max_size=MAX_MESSAGE_BYTES)
        self.ws, self.goodbye, self.silence = ws, None, None
        reader = asyncio.create_task(self._read(ws))
        try:
            reply = await self._call("connect", {"protocolVersion": PROTOCOL_VERSION, "client": client.client_info},
                                     str(uuid.uuid4()), client.connect_timeout)
            params = reply.raw["payload"]
            client.server_version = params["protocolVersion"]
            client.session_id = params["sessionId"]
            self.silence = params["heartbeat"]["pingIntervalMs"] / 1000 + client.heartbeat_margin
            await self.authenticate(client.connect_timeout)
            await self._resume_all()
            # The presence members of the previous connection ended with it: they are made again before ready.
            await client._restore()
        except BaseException:
            await self._close_socket(ws, 1000, "connection attempt failed")
            reader.cancel()
            raise
        self.ready.set()
        return reader

    async def _resume_all(self) -> None:
        """Subscribes again to every subscription with `since` = its last seq; ends those the server refuses now."""
        resumed = [sub for sub in self.client._subscriptions.values() if sub._active]
        await asyncio.gather(*(self._resume(sub) for sub in resumed))

    async def _resume(self, sub: Subscription) -> None:
        # A subscription whose events have no seq has nothing to replay: it is resumed without since.
        since = sub.last_seq if sub.resumable else None
        payload: dict[str, Any] = {"topic": sub.topic}
        if since is not None:
            payload["since"] = since
        if sub.query is not None:
            payload["query"] = sub.query
        if sub.snapshot:
            payload["snapshot"] = True
        while True:
            try:
                # The reply is applied as it is read, so that a gap is reported before the events that follow it.
                await self._call("subscribe", payload, str(uuid.uuid4()), self.client.request_timeout,
                                 lambda reply: sub._apply_reply(reply, since, resumed=True))
                return
            except TidingsError as error:
                if error.code == "RATE_LIMITED":
                    # Many subscriptions resumed at once can exceed the connection's burst; the server did not
                    # process the refused ones, which go out again after the wait it asks for.
                    await asyncio.sleep((error.details.get("retryAfterMs") or 1000) / 1000)
                    continue
                if error.code == "TIMEOUT":
                    raise
                # NOT_FOUND: the resource was deleted or is no longer visible; FORBIDDEN: no longer allowed.
                self.client._subscriptions.pop(sub.key, None)
                sub._end(error)
                return

    async def authenticate(self, timeout: float) -> None:
        """Sends `auth` with a token, and with get_token schedules the next one before this one expires."""
        client = self.client
        token = client.token
        if client.get_token is not None:
            fresh = client.get_token()
            token = await fresh if inspect.isawaitable(fresh) else fresh
        reply = await self._call("auth", {"token": token}, str(uuid.uuid4()), timeout)
        payload = reply.raw["payload"]
        previous, client.user_id = client.user_id, payload["userId"]
        if previous is not None and previous != client.user_id:
            self._user_changed(previous, client.user_id)
        if client.get_token is not None:
            if self.refresh is not None and self.refresh is not asyncio.current_task():
                self.refresh.cancel()
            wait = max(1.0, payload["expiresAt"] / 1000 - time.time() - client.refresh_before_expiry)
            self.refresh = asyncio.create_task(self._refresh_after(wait))

    def _user_changed(self, previous: str, current: str) -> None:
        # A new connection signed another user in: the previous user's subscriptions are not carried over.
        error = TidingsError("USER_CHANGED", f"the client is now signed in as {current}, not {previous}",
                             {"previousUserId": previous, "userId": current})
        for sub in list(self.client._subscriptions.values()):
            sub._end(error)
        self.client._subscriptions.clear()

    async def _refresh_after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        if self.ready.is_set() and not self.closed:
            try:
                await self.authenticate(self.client.connect_timeout)
            except (TidingsError, Lost) as error:
                self.client.logger.warning("refreshing the token failed: %s", error)

    # -- reading -------------------------------------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> Lost:
        """Reads the socket until it closes or falls silent; returns how it ended, having failed what waited."""
        loop = asyncio.get_running_loop()
        code, reason = ABNORMAL_CLOSURE, ""
        heard = loop.time()
        try:
            while True:
                try:
                    text = await asyncio.wait_for(ws.recv(), READ_TICK)
                except asyncio.TimeoutError:
                    # websockets reports the end only once the TCP transport is gone, and after a peer that vanished
                    # (EOF, then our half-close) that can take long; the protocol's own state says it at once.
                    if ws.state is WebSocketState.CLOSED:
                        received = ws.protocol.close_rcvd
                        code = received.code if received is not None else ABNORMAL_CLOSURE
                        reason = received.reason if received is not None else "the connection ended"
                        ws.transport.abort()
                        break
                    if self.silence is not None and loop.time() - heard > self.silence:
                        reason = "no message from the server; the link is dead"
                        self._spawn(self._close_socket(ws, 4000, reason))
                        break
                    continue
                heard = loop.time()
                self._dispatch(ws, text)
        except ConnectionClosed:
            # A close without a close frame from the server (a dead TCP link) is 1006, as browsers report it.
            received = ws.protocol.close_rcvd
            code = received.code if received is not None else ABNORMAL_CLOSURE
            reason = received.reason if received is not None else ""
        except Exception as error:
            # Whatever else ends the reading (a bug in a handler included) ends the link, which is then reconnected:
            # a reader that died quietly would leave the client connected to nothing.
            self.client.logger.exception("reading from the server failed")
            reason = f"reading failed: {error!r}"
            self._spawn(self._close_socket(ws, 4000, reason))
        if self.goodbye is not None:
            code, reason, again = self.goodbye
        else:
            again = should_reconnect(code)
        # After a token expired the server says not to reconnect, but get_token can give the fresh token it needs.
        again = again or (code == TOKEN_EXPIRED_CLOSE and self.client.get_token is not None)
        lost = Lost(code, reason, again)
        if self.ws is ws:
            self.ws = None
            self.ready.clear()
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(lost)
            self.pending.clear()
            self.hooks.clear()
        return lost

    def _dispatch(self, ws: ClientConnection, text: str | bytes) -> None:
        client = self.client
        decoded = decode_server(text)
        if decoded.kind == "invalid":
            client.logger.warning("unreadable message from the server (%s): %s", decoded.code, decoded.errors)
            future = self.pending.pop(decoded.request_id, None) if decoded.request_id else None
            if future is not None and not future.done():
                future.set_exception(TidingsError("INVALID_REPLY", f"the reply did not decode: {decoded.errors}",
                                                  {"errors": [e.__dict__ for e in decoded.errors]}, decoded.request_id))
            return
        payload = decoded.raw["payload"]
        if decoded.kind == "reply":
            rid = decoded.request_id or ""
            future = self.pending.pop(rid, None)
            hook = self.hooks.pop(rid, None)
            if future is None or future.done():
                client.logger.debug("a reply to no request in flight: %s", rid)
            elif decoded.type in ("error", "auth_failed"):
                future.set_exception(TidingsError(payload["code"], payload["message"], payload.get("details"), rid))
            else:
                if hook is not None:
                    hook(payload)
                future.set_result(decoded)
            return
        if decoded.type == "ping":
            self._spawn(self._send(ws, {"type": "pong", "timestamp": _now_ms(), "payload": {}}))
        elif decoded.type == "event":
            client._on_event(payload)
        elif decoded.type == "notification":
            client._on_notification(payload)
        elif decoded.type == "unsubscribe":
            client._on_ended(payload)
        elif decoded.type == "disconnect":
            self.goodbye = (payload["code"], payload["reason"], payload["reconnect"])
        elif decoded.type == "error":
            client.logger.warning("the server reports %s: %s", payload["code"], payload["message"])
            if payload["code"] == "TOKEN_EXPIRED" and client.get_token is not None:
                self._spawn(self.authenticate(client.connect_timeout))

    # -- sending -------------------------------------------------------------------------------------------------

    async def _send(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        try:
            await ws.send(json.dumps(message, separators=(",", ":")))
        except ConnectionClosed:
            # The reader reports the close; a message that did not go out is the request's to retry or fail.
            pass

    async def _call(
        self,
        type: str,
        payload: dict[str, Any],
        request_id: str,
        timeout: float,
        on_reply: Callable[[dict[str, Any]], None] | None = None,
    ) -> Decoded:
        """One request on the current socket: its reply, TidingsError for an error reply or a timeout, or Lost."""
        ws = self.ws
        if ws is None:
            raise Lost(ABNORMAL_CLOSURE, "not connected", True)
        future: asyncio.Future[Decoded] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        if on_reply is not None:
            self.hooks[request_id] = on_reply
        try:
            message = {"type": type, "timestamp": _now_ms(), "requestId": request_id, "payload": payload}
            await ws.send(json.dumps(message, separators=(",", ":")))
            return await asyncio.wait_for(future, timeout)
        except ConnectionClosed:
            # The reader fails the future with the close's details; this only covers a send that lost the race. The
            # socket is no longer ready even if the reader has not seen the close yet: a request that would go out
            # again waits for the next connection, rather than failing on this one in a loop that never yields.
            if self.ws is ws:
                self.ready.clear()
            if future.done() and not future.cancelled() and isinstance(future.exception(), Lost):
                raise future.exception() from None  # type: ignore[misc]
            raise Lost(ABNORMAL_CLOSURE, "closed while sending", True) from None
        except asyncio.TimeoutError:
            raise TidingsError("TIMEOUT", f"no reply to {type} within {timeout:.1f} s", None, request_id) from None
        finally:
            if self.pending.get(request_id) is future:
                del self.pending[request_id]
                self.hooks.pop(request_id, None)

    async def request(
        self,
        type: str,
        payload: dict[str, Any],
        request_id: str,
        retry: bool,
        timeout: float,
        on_reply: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """A request that waits for the connection, and goes out again after a reconnect when `retry` allows."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.closed or self.client.state in ("idle", "closed"):
                raise TidingsError("CLOSED", "the client is not connected; call connect()", None, request_id)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TidingsError("TIMEOUT", f"no reply to {type} within {timeout:.1f} s", None, request_id)
            if not self.ready.is_set():
                try:
                    await asyncio.wait_for(self.ready.wait(), remaining)
                except asyncio.TimeoutError:
                    raise TidingsError("TIMEOUT", f"no connection within {timeout:.1f} s", None, request_id) from None
                continue
            try:
                reply = await self._call(type, payload, request_id, remaining, on_reply)
                return reply.raw["payload"]
            except Lost as lost:
                if self.closed:
                    raise TidingsError("CLOSED", "the client closed before the reply", None, request_id) from None
                if not retry:
                    message = f"the connection closed before the reply to {type}; it may or may not have been applied"
                    raise TidingsError("CONNECTION_LOST", message, {"code": lost.code}, request_id) from None
                # Whatever happens next, the reader and the reconnection get their turn first.
                await asyncio.sleep(0)
            except TidingsError as error:
                if error.code != "RATE_LIMITED":
                    raise
                # The server did not process it (docs/protocol.md, section 10): it goes out again after the wait.
                wait = (error.details.get("retryAfterMs") or 1000) / 1000
                await asyncio.sleep(min(wait, max(0.0, deadline - loop.time())))

    # -- the end -------------------------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _close_socket(self, ws: ClientConnection, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code, reason[:100]), 2)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            # A dead link may never answer the close; the socket is dropped then.
            ws.transport.abort()

    async def shutdown(self, error: TidingsError) -> None:
        """Ends the client: says goodbye, fails whatever waits, ends the subscriptions' streams, reports closed."""
        if self.closed and self.client.state == "closed":
            return
        self.closed = True
        self.ready.set()
        if self.refresh is not None:
            self.refresh.cancel()
        ws, self.ws = self.ws, None
        for future in self.pending.values():
            if not future.done():
                future.set_exception(TidingsError("CLOSED", error.message, error.details))
        self.pending.clear()
        self.hooks.clear()
        if ws is not None:
            goodbye = {"type": "disconnect", "timestamp": _now_ms(), "payload": {"reason": "client closed"}}
            try:
                # A send waits while the socket's buffer is full, as it stays when the server is gone.
                await asyncio.wait_for(self._send(ws, goodbye), 2)
            except asyncio.TimeoutError:
                pass
            await self._close_socket(ws, 1000, "client closed")
        if self.runner is not None and self.runner is not asyncio.current_task() and not self.runner.done():
            self.runner.cancel()
        for sub in list(self.client._subscriptions.values()):
            sub._end(error)
        self.client._subscriptions.clear()
        self.client._set_state("closed")
