"""Every table the project prints or writes, drawn by one function over tabulate.

Cells are shown as given (numbers as str() would, None as "-"): callers format their numbers,
so tabulate never reformats "1.40" as 1.4. Plain tables line their columns up without rules, for
a terminal; Markdown ones are GitHub's pipe tables, padded so they line up in a terminal too.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tabulate import tabulate

MISSING = "-"
_ALIGN = {"l": "left", "r": "right"}


def _is_number(cell: object) -> bool:
    return isinstance(cell, (int, float)) and not isinstance(cell, bool)


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *, markdown: bool = False,
          align: str | None = None, indent: str = "") -> list[str]:
    """The lines of `rows` under `header`. align: a letter per column, "l" (left) or "r"
    (right); by default, in plain text, a column of numbers is right-aligned and any other left,
    and in Markdown every column is left-aligned, as GitHub shows it. In Markdown a "|" inside a
    cell is escaped. indent: put before every line."""
    body = [list(row) for row in rows]
    if align is None:
        align = "".join("r" if not markdown and body and all(_is_number(r[i]) or r[i] is None for r in body)
                        else "l" for i in range(len(header)))
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    if markdown:
        header = [h.replace("|", "\\|") for h in header]
        body = [[c if not isinstance(c, str) else c.replace("|", "\\|") for c in r] for r in body]
    text = tabulate(body, headers=list(header), tablefmt="github" if markdown else "plain",
                    colalign=[_ALIGN[a] for a in align], disable_numparse=True, missingval=MISSING)
    return [indent + line.rstrip() for line in text.splitlines()]
