"""A description of the machine the evaluation ran on: CPU, cores, memory, OS, Python, libraries."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = ("twisted", "klein", "grpcio", "treq", "protobuf", "matplotlib")


def _first_value(path: Path, key: str) -> str | None:
    """The value of the first `key: value` (or key=value) line of a /proc or /etc file."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        name, sep, value = line.partition(":") if ":" in line else line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip('"')
    return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    # x86 says "model name"; some ARM kernels only "Hardware" or "Model".
    for key in ("model name", "Hardware", "Model", "cpu model"):
        value = _first_value(cpuinfo, key)
        if value:
            return value
    return platform.processor() or platform.machine() or "unknown"


def memory(meminfo: Path = Path("/proc/meminfo")) -> str:
    value = _first_value(meminfo, "MemTotal")  # "16314412 kB"
    try:
        kib = int(value.split()[0]) if value else None
    except ValueError:
        kib = None
    return f"{kib / 1024 / 1024:.1f} GiB" if kib else "unknown"


def operating_system(os_release: Path = Path("/etc/os-release")) -> str:
    name = _first_value(os_release, "PRETTY_NAME") or platform.system()
    return f"{name}, kernel {platform.release()}" if platform.release() else name


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> list[tuple[str, str]]:
    """(what, value) rows, in the order a reader wants them."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} (usable by this process: {usable})"),
        ("memory", memory()),
        ("OS", operating_system()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    rows += [(name, version(name)) for name in PACKAGES]
    return rows
