"""Package facts a release needs: the license files equal the repository's, the version is stated once, and the
pins of the dev extra are those of requirements/dev.txt."""

from __future__ import annotations

import importlib.metadata
import tomllib

import tidings

from conftest import PACKAGE, ROOT


def test_the_license_files_are_the_repositorys() -> None:
    for name in ("LICENSE-MIT", "LICENSE-APACHE"):
        assert (PACKAGE / name).read_text() == (ROOT / name).read_text(), f"{name} differs from the repository's"


def test_the_name_license_and_version_of_the_package() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert project["name"] == "tidings"
    assert project["license"] == "MIT OR Apache-2.0"
    # The installed package's version is read from __version__, which the client sends in `connect`.
    assert importlib.metadata.version("tidings") == tidings.__version__


def test_the_dev_extra_pins_what_requirements_dev_txt_pins() -> None:
    # scripts/test installs requirements/dev.txt; the `dev` extra is for those who install with pip's extras. The
    # two must not drift apart.
    pins = {line.strip() for line in (PACKAGE / "requirements" / "dev.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    extra = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert set(extra) <= pins, set(extra) - pins
