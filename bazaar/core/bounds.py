"""How large the protocol's numbers may grow, and the one rule for idempotency keys.

Every epoch, index and transaction number is a signed 64-bit integer on disk (SQLite) and on
the wire (protobuf int64). A replica computes epoch + 1 (standing) and index + 1 (appending),
so a value a peer sent at the top of that range would overflow the next time it is used, and
the value is on disk: the replica would fail again after every restart. The bounds below keep
every value and its successor far inside the range, and far above anything a real cluster
reaches (one epoch per takeover, one index per trade).
"""

from __future__ import annotations

MAX_EPOCH = 2**62
MAX_INDEX = 2**62  # log indexes and transaction numbers

# The front end's rule for a client's Idempotency-Key (docs/api.md): 1 to 128 printable ASCII
# characters, no space at either end. Keys the front end makes itself ("fe-" + 32 hex digits)
# follow it too.
MAX_KEY_LENGTH = 128


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable() and key == key.strip()
