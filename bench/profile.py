"""Where a process's reactor thread spends its time: py-spy samples, summarised.

`py-spy record --idle` samples every thread whatever it does, so the reactor thread's samples
are wall-clock time: waiting for events in epoll (the leaf is the reactor's doPoll), or busy,
including time in C code that released the GIL (a SQLite query, an fsync) but still holds up the
reactor. The reactor thread owns all state and answers every request, so its busy share says
how close a process is to saturation, and its busy functions say what to make cheaper. Other
threads (gRPC's pools, the log writer) are left out: they mostly wait, and py-spy's idle
detection, which would tell their waiting from their work, proved unreliable here.

Each line of `--format raw` is `frame;frame;...;leaf count`, outermost first, a frame being
`function (file:line)`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bazaar import tables

RATE = 100  # samples per second
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Packages whose subpackages say more than the package (twisted/web vs twisted/internet).
_SPLIT_DEEPER = {"bazaar", "twisted", "google", "grpc"}
OUR_PACKAGE = "bazaar"
# Frames that only the reactor thread has, and the reactor's wait for events.
_REACTOR_LOOP = ("ReactorBase.mainLoop", "twisted/internet/base.py")
_WAITING = (".doPoll", ".doSelect")


@dataclass
class Profile:
    samples: int = 0  # of the reactor thread
    waiting: int = 0  # of them waiting for events
    busy_by_area: Counter = field(default_factory=Counter)
    busy_by_function: Counter = field(default_factory=Counter)  # own time: the leaf frame
    # Inclusive: a busy sample counts once for each distinct project function on its stack.
    ours_inclusive: Counter = field(default_factory=Counter)

    @property
    def busy(self) -> int:
        return self.samples - self.waiting


def area(file: str) -> str:
    """A file as py-spy names it (package-relative) to an area: `bazaar/order`, `twisted/web`,
    `sqlite3`, `json`, ... A bare stdlib file is its module."""
    parts = [p for p in file.replace("\\", "/").split("/") if p]
    if not parts:
        return "?"
    if "site-packages" in parts:  # --full-filenames, or a file py-spy could not shorten
        parts = parts[parts.index("site-packages") + 1:]
    if parts[0] in _SPLIT_DEEPER and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    name = parts[0]
    return name[:-3] if name.endswith(".py") else name


def frame(text: str) -> tuple[str, str]:
    """(function, file) of one frame of a raw stack."""
    match = _FRAME.match(text.strip())
    if match is None:
        return text.strip(), "?"
    return match["function"], match["file"]


def summarize(raw: str) -> Profile:
    profile = Profile()
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [frame(f) for f in stack.split(";")]
        if not any(fn == _REACTOR_LOOP[0] and fl == _REACTOR_LOOP[1] for fn, fl in frames):
            continue  # another thread, or a torn stack
        count = int(count_text)
        function, file = frames[-1]
        profile.samples += count
        if function.endswith(_WAITING):
            profile.waiting += count
            continue
        profile.busy_by_area[area(file)] += count
        profile.busy_by_function[f"{function} ({file})"] += count
        for ours in {f"{fn} ({fl})" for fn, fl in frames if area(fl).startswith(OUR_PACKAGE)}:
            profile.ours_inclusive[ours] += count
    return profile


def render(name: str, profile: Profile, top: int = 8) -> list[str]:
    if profile.samples == 0:
        return [f"{name}: no sample of its reactor thread"]

    def share(count: int) -> str:
        return f"{100 * count / profile.samples:.1f}%"

    lines = [f"{name}: reactor thread busy {share(profile.busy)} of {profile.samples} samples "
             f"(waiting for events {share(profile.waiting)})"]
    if not profile.busy:
        return lines
    lines.append("  busy, by area: " + ", ".join(
        f"{a} {share(c)}" for a, c in profile.busy_by_area.most_common(top)))
    lines.append("  busy, top functions (own time):")
    lines += tables.table(("share", "function"), [(share(c), f) for f, c in profile.busy_by_function.most_common(top)],
                          align="rl", indent="    ")
    if profile.ours_inclusive:
        lines.append(f"  busy, {OUR_PACKAGE} functions with their callees:")
        lines += tables.table(("share", "function"),
                              [(share(c), f) for f, c in profile.ours_inclusive.most_common(top // 2)],
                              align="rl", indent="    ")
    return lines


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def _whole(seconds: float) -> int:
    return max(1, round(seconds))


def _file(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name) + ".raw"


def record(pids: dict[str, int], seconds: float, folder: Path) -> dict[str, subprocess.Popen]:
    """Start one `py-spy record` per process (non-blocking: the target is not paused for each
    sample); collect them with `collect`."""
    py_spy = find_py_spy()
    if py_spy is None:
        return {}
    return {
        name: subprocess.Popen(
            [py_spy, "record", "--format", "raw", "--idle", "--nonblocking", "--rate", str(RATE),
             "--duration", str(_whole(seconds)), "--pid", str(pid), "--output", str(folder / _file(name))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for name, pid in pids.items()
    }


def collect(spies: dict[str, subprocess.Popen], folder: Path, timeout: float) -> dict[str, Profile | str]:
    """Each process's profile, or why there is none (py-spy's own first line)."""
    out: dict[str, Profile | str] = {}
    for name, spy in spies.items():
        try:
            text, _ = spy.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            spy.kill()
            text, _ = spy.communicate()
        path = folder / _file(name)
        if spy.returncode == 0 and path.exists():
            out[name] = summarize(path.read_text(errors="replace"))
        else:
            lines = [ln for ln in (text or "").splitlines() if ln.strip()]
            out[name] = f"py-spy could not sample it (exit {spy.returncode}): {lines[0] if lines else 'no output'}"
    return out
