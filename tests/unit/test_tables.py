"""bazaar.tables: the one table renderer, in plain text and in Markdown."""

import pytest

from bazaar.tables import table


def test_plain_text_lines_columns_up_and_right_aligns_numbers():
    lines = table(("name", "count", "p50"), [("ford", 5, "1.40"), ("tesla", 1234, None)], indent="  ")
    assert [line.split() for line in lines] == [["name", "count", "p50"], ["ford", "5", "1.40"],
                                                ["tesla", "1234", "-"]]
    assert all(line.startswith("  ") and line == line.rstrip() for line in lines)
    # numbers end where their header ends; text (preformatted numbers too) starts where its header does
    assert lines[0].index("count") + 5 == lines[1].index("5") + 1 == lines[2].index("1234") + 4
    assert lines[0].index("p50") == lines[1].index("1.40") == lines[2].index("-")


def test_cells_are_shown_as_given():
    assert table(("p",), [("0.20",), ("1e3",), (True,)]) == ["p", "0.20", "1e3", "True"]


def test_explicit_alignment():
    lines = table(("a", "b"), [("x", "1.0 s"), ("yy", "10.0 s")], align="lr")
    assert lines[1].endswith(" 1.0 s") and lines[2].endswith("10.0 s") and len(lines[1]) == len(lines[2])
    with pytest.raises(ValueError):
        table(("a", "b"), [], align="l")


def test_markdown_is_a_pipe_table_that_escapes_bars():
    lines = table(("measure", "value"), [("a | b", 3), ("longer measure", None)], markdown=True)
    assert lines[0].startswith("| measure ") and set(lines[1]) == {"|", "-"}
    assert lines[2].startswith("| a \\| b ") and lines[3].startswith("| longer measure |")
    assert lines[3].rstrip("|").rstrip().endswith("-")
    assert len({len(line) for line in lines}) == 1
