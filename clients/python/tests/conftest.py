"""Test support: the tidings binary as a server process on 127.0.0.1, tokens from `tidings token`, and waiting helpers.

The binary is $TIDINGS_BINARY, by default <repo>/target/debug/tidings (or under $CARGO_TARGET_DIR). The server is started as
tests/support/process.mjs starts it for the JavaScript tests: `tidings serve --listen 127.0.0.1:0 --data-dir DIR`,
RUST_LOG=warn, settings as TIDINGS_* variables, and the bound address read from the first line of its output.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
ROOT = PACKAGE.parent.parent

#: The API key of servers started with API_SETTINGS; the server wants at least 16 characters.
API_KEY = "python-test-api-key-0123456789"

#: Settings that switch the server's notifications and admin APIs on with API_KEY.
API_SETTINGS = {"TIDINGS_API_KEYS": f'["{API_KEY}"]'}

_ADDRESS = re.compile(r"(ws://\S+/ws)")


def binary() -> str:
    # As tests/support/process.mjs does, a CARGO_TARGET_DIR (relative to the repository) moves the default.
    target = ROOT / os.environ["CARGO_TARGET_DIR"] if os.environ.get("CARGO_TARGET_DIR") else ROOT / "target"
    path = os.environ.get("TIDINGS_BINARY") or str(target / "debug" / "tidings")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no tidings binary at {path}: build it (cargo build -p tidings) or set TIDINGS_BINARY")
    return path


class Server:
    """A `tidings serve` process on 127.0.0.1 with its own data dir."""

    def __init__(self, data_dir: str, settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.settings = dict(settings or {})
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0
        self._stderr = tempfile.TemporaryFile(mode="w+")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0, timeout: float = 20.0) -> Server:
        """Starts the server and returns once its first line of output names the address it listens on."""
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self.settings}
        self.process = subprocess.Popen(
            [binary(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env, text=True,
        )
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout)
        selector.close()
        line = self.process.stdout.readline() if ready else ""
        match = _ADDRESS.search(line)
        if match is None:
            self.kill()
            self._stderr.seek(0)
            raise RuntimeError(f"the server did not start (first line {line!r}): {self._stderr.read()[-4000:]}")
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        # The rest of its output is drained, so that the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Ends the process and waits for it: SIGKILL by default (no goodbye to its clients); with SIGTERM the
        server shuts down and tells its clients (`disconnect` 1001, reconnect)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def freeze(self) -> None:
        """Stops the process (SIGSTOP) and returns once it is stopped, so that what clients send stays unread."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        # waitpid with WUNTRACED returns when the child has stopped; the process is reaped later, by kill().
        _, status = os.waitpid(self.process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"the server did not stop: status {status}"

    def restart(self, timeout: float = 20.0) -> None:
        """Starts the server again on the same data dir, on the same port when it is still free."""
        try:
            self.start(self.port, timeout)
        except RuntimeError:
            # The port was taken in between; clients that take a url function follow the new one.
            self.start(0, timeout)

    def token(self, user: str, roles: tuple[str, ...] = (), ttl: str = "1h") -> str:
        """A token for a user, signed with the data dir's secret, valid for `ttl` (such as 2s or 1h)."""
        args = [binary(), "token", "--data-dir", self.data_dir, "--user", user, "--ttl", ttl]
        for role in roles:
            args += ["--role", role]
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def _start(settings: dict[str, str] | None) -> Iterator[Server]:
    data_dir = tempfile.mkdtemp(prefix="tidings-python-test-")
    server = Server(data_dir, settings)
    try:
        yield server.start()
    finally:
        server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh server with the notifications API on (API_KEY), killed when the test ends."""
    yield from _start(API_SETTINGS)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    """A server shared by the tests of one module that do not disturb each other, killed after the module."""
    yield from _start(API_SETTINGS)
