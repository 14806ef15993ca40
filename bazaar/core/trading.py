"""What a trade placed under an idempotency key gets when the log already holds that key.

A key is in a log at most once. Its entry answers every later request under the key, once it
is committed: the same trade gets the same answer (its transaction number, or the refusal for
lack of stock), and a different trade under the same key is refused as a reuse. So a client's
retry, or the front end's redo on a new leader, never executes anything twice, and a key that
was refused stays refused even after a sell makes room.
"""

from __future__ import annotations

import enum

from bazaar.core.chain import Kind, Record


class Verdict(enum.Enum):
    EXECUTED = "executed"  # the entry's transaction number answers
    NOT_ENOUGH_STOCK = "not enough stock"
    KEY_REUSED = "key reused"


def verdict(entry: Record, name: str, type_: str | None, quantity: int) -> Verdict:
    """How the entry logged under a key answers a request for (name, type, quantity)."""
    if not entry.same_request(name, type_, quantity):
        return Verdict.KEY_REUSED
    if entry.kind is Kind.TRADE:
        return Verdict.EXECUTED
    return Verdict.NOT_ENOUGH_STOCK
