"""The committed modules in bazaar/v1 are exactly what protos/ generates (`tox -e protos`)."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("generate_protos", REPO / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    generated = load_generator().generate(tmp_path)
    assert generated, "protoc produced nothing"
    names = sorted(p.name for p in generated)
    committed = sorted(p.name for p in (REPO / "bazaar" / "v1").glob("*_pb2*.py*"))
    assert names == committed, "run `tox -e protos` and commit bazaar/v1"
    for path in generated:
        assert path.read_bytes() == (REPO / "bazaar" / "v1" / path.name).read_bytes(), (
            f"bazaar/v1/{path.name} is stale: run `tox -e protos` and commit it"
        )
