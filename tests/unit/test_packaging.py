"""What pyproject.toml promises: every third-party import declared, one source of the version,
and `bazaar --version` saying it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

import bazaar
from bazaar.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised as PEP 503 says ("twisted[tls]>=24" -> "twisted")."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def _imported_modules(paths: list[Path]) -> set[str]:
    """The top-level names of every module imported (absolutely) by the files under `paths`."""
    names = set()
    for path in paths:
        for file in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), str(file))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_is_declared():
    declared = {_name(r) for r in PROJECT["dependencies"]}
    optional = {_name(r) for extra in PROJECT["optional-dependencies"].values() for r in extra}
    imported = _imported_modules([ROOT / "bazaar", *sorted((ROOT / "twisted" / "plugins").glob("*.py"))])
    third_party = sorted(imported - set(sys.stdlib_module_names) - {"bazaar"})
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for module in third_party:
        names = {_name(d) for d in distributions.get(module, [])}
        # matplotlib is imported only by `bazaar plot`, from the `evaluate` extra.
        if not names & declared and not (module == "matplotlib" and names & optional):
            undeclared.append(f"{module} (from {sorted(names) or 'no installed distribution'})")
    assert "werkzeug" in third_party and "numpy" in third_party  # the scan sees what it should
    assert undeclared == []


def test_the_version_is_written_once():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bazaar.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", bazaar.__version__)


def test_the_license_is_mit_and_shipped():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 The Bazaar authors" in text


def test_version_flag_prints_the_installed_version(capsys, monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: {"bazaar": "9.8.7"}[name])
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == "bazaar 9.8.7\n"


def test_version_without_an_installed_distribution_is_the_source_one(capsys, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"bazaar {bazaar.__version__}\n"
