"""docs/openapi.yaml as the tests read it, and the routes it documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def load_spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def documented_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in the spec."""
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}
