"""Regenerate the Python modules in bazaar/v1 from the .proto files here.

Run with `tox -e protos`. tests/unit/test_protos_fresh.py fails when the committed modules
differ from what this produces, so an edited .proto cannot go stale silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
REPO = PROTOS.parent


def generate(out: Path) -> list[Path]:
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "bazaar" / "v1").glob("*.proto"))
    args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + sources) != 0:
        raise SystemExit("protoc failed")
    return sorted((out / "bazaar" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    for path in generate(REPO):
        print(path.relative_to(REPO))
    sys.exit(0)
