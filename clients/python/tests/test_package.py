"""Package facts a release needs: the license files equal the repository's, and the version is stated once."""

from __future__ import annotations

import tomllib

import tidings

from conftest import PACKAGE, ROOT


def test_the_license_files_are_the_repositorys() -> None:
    for name in ("LICENSE-MIT", "LICENSE-APACHE"):
        assert (PACKAGE / name).read_text() == (ROOT / name).read_text(), f"{name} differs from the repository's"


def test_the_version_and_license_of_pyproject() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert project["name"] == "tidings"
    assert project["license"] == "MIT OR Apache-2.0"
    assert project["version"] == tidings.__version__
