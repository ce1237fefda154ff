"""Runs the quickstart of README.md against a real server, as a reader would run it, and checks what it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import PACKAGE, Server


def _block(language: str) -> str:
    readme = (PACKAGE / "README.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", readme, re.S)
    assert blocks, f"README.md has no {language} block"
    return blocks[0]


def test_the_quickstart_runs_and_prints_what_the_readme_says(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(_block("python"))
    env = {**os.environ, "TIDINGS_URL": server.url, "TIDINGS_TOKEN": server.token("alice")}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    expected = _block("text").splitlines()
    assert len(printed) == len(expected), result.stdout
    # Ids and seqs differ from run to run: the lines must match the README's with any id in place of its id.
    for line, shown in zip(printed, expected):
        pattern = re.escape(shown).replace("ORD\\-01JF6Z7Y3V8K2M4N6P8Q0R2S4T", r"ORD-[0-9A-Z]+")
        assert re.fullmatch(pattern.replace(r"seq\ 1", r"seq\ \d+"), line), (line, shown)
