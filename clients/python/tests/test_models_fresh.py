"""The staleness test: the models in src/tidings/models are what scripts/generate makes of schema/ today."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

from conftest import PACKAGE


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.py")}


def test_the_generated_models_are_fresh(tmp_path: Path) -> None:
    out = tmp_path / "models"
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run([str(PACKAGE / "scripts" / "generate"), str(out)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    committed = PACKAGE / "src" / "tidings" / "models"
    assert _files(out) == _files(committed), "a schema was added or removed: run scripts/generate"
    stale = [name for name in sorted(_files(out)) if not filecmp.cmp(out / name, committed / name, shallow=False)]
    assert not stale, f"these models differ from schema/: run scripts/generate ({stale})"
