"""Orders and trade types as plain values, shared by every service."""

from __future__ import annotations

from dataclasses import dataclass

BUY = "buy"
SELL = "sell"
TRADE_TYPES = (BUY, SELL)

# Largest quantity one trade may move. Keeps every stock's quantity and volume far inside
# SQLite's 64-bit integers however many trades there are, and gives "huge" a clear answer.
MAX_TRADE_QUANTITY = 1_000_000_000


@dataclass(frozen=True)
class Order:
    number: int
    name: str
    type: str  # BUY or SELL
    quantity: int

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, "name": self.name, "type": self.type, "quantity": self.quantity}


def valid_quantity(quantity: object) -> bool:
    """Whole number of shares a trade may move (JSON booleans are not numbers here)."""
    return (
        isinstance(quantity, int)
        and not isinstance(quantity, bool)
        and 1 <= quantity <= MAX_TRADE_QUANTITY
    )
