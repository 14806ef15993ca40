"""Bazaar: a replicated stock-trading service on Twisted and gRPC."""

from __future__ import annotations

# The one place the version is written: pyproject.toml reads it ([tool.setuptools.dynamic]).
__version__ = "0.1.0"


def installed_version() -> str:
    """The installed distribution's version (importlib.metadata), or __version__ when bazaar
    runs from a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bazaar")
    except PackageNotFoundError:
        return __version__
