"""The top-level command: --version, and the license the package declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

import linkstack
from linkstack.cli.main import app

ROOT = Path(__file__).resolve().parent.parent


def test_version_matches_the_package_metadata() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert res.stdout.strip() == f"linkstack {linkstack.__version__}" == (
        f"linkstack {project['version']}")


def test_license_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "LICENSE").read_text()
    assert project["license"]["text"] == "MIT" and text.startswith("MIT License")
