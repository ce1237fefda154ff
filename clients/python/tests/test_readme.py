"""Runs the quickstart of README.md against a real server, as a reader would run it, and checks what it prints.

The README's blocks marked `quickstart` (```sh quickstart, ```python quickstart, ```text quickstart) are run as
tests/support/quickstart.mjs runs the JavaScript SDKs': the shell steps in a folder of the test's (a token from
`tidings token`, the server on a port of its own), the script with the environment they export, and what it printed
compared line for line with the README's, any resource id and seq standing for the README's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import PACKAGE, Server, binary


def _blocks() -> dict[str, str]:
    """The README's blocks marked `quickstart`, by language; each language once."""
    readme = (PACKAGE / "README.md").read_text()
    blocks: dict[str, str] = {}
    for language, body in re.findall(r"^```(\w+) quickstart\n(.*?)^```$", readme, re.S | re.M):
        assert language not in blocks, f"README.md has two {language} quickstart blocks"
        blocks[language] = body
    return blocks


def _tidings(command: str) -> list[str]:
    """The arguments of a `tidings ...` command of the README."""
    words = command.split()
    assert words[0] == "tidings", f"a quickstart step the test runs is a tidings command: {command}"
    return words[1:]


def _run_setup(sh: str, cwd: Path, servers: list[Server]) -> dict[str, str]:
    """Runs the shell steps in cwd and returns the environment they export; the server they start joins `servers`.

    `tidings serve ... &` starts the server with the line's data dir, on a port of its own; `export NAME=$(tidings
    ...)` runs the command; `export NAME=ws://...` is the started server's address; a `pip install` or `npm install`
    line is what the test's own setup has done. Any other line fails, so that the README cannot gain a step that
    nothing runs.
    """
    env: dict[str, str] = {}
    for line in (raw.split("  #")[0].strip() for raw in sh.splitlines()):
        if not line or line.startswith("#"):
            continue
        if serve := re.fullmatch(r"(tidings serve .*?)\s*&", line):
            words = _tidings(serve[1])[1:]
            options = dict(zip(words[::2], words[1::2]))
            assert set(options) <= {"--listen", "--data-dir"}, f"an option the test does not pass on: {line}"
            server = Server(str(cwd / options["--data-dir"]))
            servers.append(server)
            server.start()
        elif command := re.fullmatch(r"export (\w+)=\$\((tidings [^)]*)\)", line):
            printed = subprocess.run([binary(), *_tidings(command[2])], cwd=cwd, check=True, capture_output=True,
                                     text=True, timeout=30)
            env[command[1]] = printed.stdout.strip()
        elif address := re.fullmatch(r"export (\w+)=ws://\S+", line):
            assert servers, f"the server starts before its address is exported: {line}"
            env[address[1]] = servers[-1].url
        else:
            assert re.match(r"(pip|npm) install ", line), f"a quickstart step the test does not know how to run: {line}"
    assert servers, "the quickstart starts a server"
    return env


def _shown(line: str) -> re.Pattern[str]:
    """A line the README shows as printed, with any resource id and any seq in place of the README's."""
    parts = re.split(r"([A-Z]{3}-[0-9A-Z]{26}|seq \d+)", line)
    pattern = "".join(
        re.escape(part) if n % 2 == 0 else (r"seq \d+" if part.startswith("seq") else r"[A-Z]{3}-[0-9A-Z]+")
        for n, part in enumerate(parts)
    )
    return re.compile(pattern)


def test_the_quickstart_runs_and_prints_what_the_readme_says(tmp_path: Path) -> None:
    blocks = _blocks()
    assert sorted(blocks) == ["python", "sh", "text"]
    servers: list[Server] = []
    try:
        env = _run_setup(blocks["sh"], tmp_path, servers)
        assert sorted(env) == ["TIDINGS_TOKEN", "TIDINGS_URL"]
        script = tmp_path / "quickstart.py"
        script.write_text(blocks["python"])
        result = subprocess.run([sys.executable, str(script)], env={**os.environ, **env}, capture_output=True,
                                text=True, timeout=60, cwd=tmp_path)
    finally:
        for server in servers:
            server.kill()
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    expected = blocks["text"].splitlines()
    assert len(printed) == len(expected), result.stdout
    for line, shown in zip(printed, expected):
        assert _shown(shown).fullmatch(line), (line, shown)
