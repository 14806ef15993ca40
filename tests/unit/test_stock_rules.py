import pytest

from bazaar.core.orders import MAX_TRADE_QUANTITY
from bazaar.core.stock import DEFAULT_STOCKS, Stock, TradeCheck, apply_trade

TESLA = Stock("tesla", 183.26, 10, 100)


def test_default_catalog_is_the_seeds() -> None:
    assert [s.name for s in DEFAULT_STOCKS] == [
        "tesla", "ford", "apple", "amazon", "nvidia", "intel", "meta", "nike", "amc", "gamestop"
    ]
    assert all(s.quantity == 1000 and s.volume == 100 for s in DEFAULT_STOCKS)


def test_buy_and_sell_move_quantity_and_add_volume() -> None:
    assert apply_trade(TESLA, "buy", 4) == (TradeCheck.OK, Stock("tesla", 183.26, 6, 104))
    assert apply_trade(TESLA, "sell", 4) == (TradeCheck.OK, Stock("tesla", 183.26, 14, 104))
    assert apply_trade(TESLA, "buy", 10)[1].quantity == 0


@pytest.mark.parametrize(
    "stock, type_, quantity, check",
    [
        (None, "nope", 0, TradeCheck.STOCK_NOT_FOUND),  # stock is checked first
        (TESLA, "hold", 0, TradeCheck.INVALID_TYPE),  # then type
        (TESLA, None, 5, TradeCheck.INVALID_TYPE),
        (TESLA, "buy", 0, TradeCheck.INVALID_QUANTITY),  # then quantity
        (TESLA, "sell", -3, TradeCheck.INVALID_QUANTITY),
        (TESLA, "sell", MAX_TRADE_QUANTITY + 1, TradeCheck.INVALID_QUANTITY),
        (TESLA, "buy", 11, TradeCheck.NOT_ENOUGH_STOCK),  # then availability
    ],
)
def test_refusals_in_the_seeds_order_leave_the_stock_alone(stock, type_, quantity, check) -> None:
    result, after = apply_trade(stock, type_, quantity)
    assert result is check
    assert after == stock
