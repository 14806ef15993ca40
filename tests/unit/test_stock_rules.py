import pytest

from bazaar.core.orders import MAX_TRADE_QUANTITY
from bazaar.core.stock import DEFAULT_STOCKS, STOCK_NAMES, Stock, TradeCheck, apply_trade, table_id

TESLA = Stock("tesla", 183.26, 10, 100)


def test_default_catalog_is_the_seeds() -> None:
    assert [s.name for s in DEFAULT_STOCKS] == [
        "tesla", "ford", "apple", "amazon", "nvidia", "intel", "meta", "nike", "amc", "gamestop"
    ]
    assert all(s.quantity == 1000 and s.volume == 100 for s in DEFAULT_STOCKS)
    assert STOCK_NAMES == tuple(s.name for s in DEFAULT_STOCKS)


def test_a_table_id_does_not_depend_on_the_order_of_the_stocks() -> None:
    assert table_id(DEFAULT_STOCKS) == table_id(reversed(DEFAULT_STOCKS))
    assert table_id(DEFAULT_STOCKS) == table_id(sorted(DEFAULT_STOCKS, key=lambda s: s.price))
    assert table_id(iter(DEFAULT_STOCKS)) == table_id(list(DEFAULT_STOCKS))  # any iterable


def test_a_table_id_is_a_fixed_fingerprint() -> None:
    # Stores record it on disk, so it must not change between runs or versions.
    assert table_id(DEFAULT_STOCKS) == "34c8480f66c3c0157aa66afd5db7deca"
    assert table_id([Stock("tesla", 183, 1, 2)]) == table_id([Stock("tesla", 183.0, 1, 2)])


@pytest.mark.parametrize(
    "changed",
    [
        Stock("teslA", 183.26, 1000, 100),
        Stock("tesla", 183.27, 1000, 100),
        Stock("tesla", 183.26, 999, 100),
        Stock("tesla", 183.26, 1000, 101),
    ],
)
def test_a_table_id_changes_when_any_field_of_any_stock_does(changed: Stock) -> None:
    assert DEFAULT_STOCKS[0].name == "tesla"
    assert table_id((changed,) + DEFAULT_STOCKS[1:]) != table_id(DEFAULT_STOCKS)


def test_a_table_id_changes_when_a_stock_is_added_or_dropped() -> None:
    ids = {table_id(DEFAULT_STOCKS), table_id(DEFAULT_STOCKS[1:]), table_id(()),
           table_id(DEFAULT_STOCKS + (Stock("gme", 1.0, 0, 0),))}
    assert len(ids) == 4


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
