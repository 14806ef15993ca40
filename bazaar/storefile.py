"""What every store file records about itself: the format it was written in, and the stock table
it was made from. Both stores (the order log, the catalog) check them when they open, and the
twistd plugins check them before the process starts, so that a wrong file is refused with a
one-line message instead of a service that fails on its first write.

The stock table matters because trades were checked against it: a log made from one table and
read with another would check the next trades against numbers it does not imply.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

FORMAT_VERSION = 2


class StoreError(Exception):
    """A store file this configuration cannot use, or a write that would break it."""


def meta(conn: sqlite3.Connection, key: str) -> Any:
    """A value of the store's `meta` table, None when absent (or when there is no such table)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def check_format(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that another version wrote (a new, empty file is fine)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    if version == 0 and not tables:
        return
    if version != FORMAT_VERSION:
        raise StoreError(f"{path} was written by another version of Bazaar (format {version}, this one "
                         f"reads {FORMAT_VERSION}); move it away to start this service afresh")


def check_table(conn: sqlite3.Connection, path: Path, table_id: str) -> None:
    """Refuse a file made from another stock table (a file that records none yet is fine)."""
    made_from = meta(conn, "stocks")
    if made_from is not None and made_from != table_id:
        raise StoreError(
            f"{path} was made from another stock table (id {made_from}; the configuration gives "
            f"{table_id}): give every process the same [stocks], or move the file away"
        )


def check_file(path: Path, table_id: str) -> None:
    """Before a service starts: refuse its store file if this configuration cannot use it.
    A missing file is fine (the service makes a new one)."""
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot be opened: {e}") from None
    try:
        check_format(conn, path)
        check_table(conn, path, table_id)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a Bazaar store ({e}); move it away to start afresh") from None
    finally:
        conn.close()
