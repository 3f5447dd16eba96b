"""Options the commands share: an integer list parsed one way for every bench."""

from __future__ import annotations

import pytest
import typer

from cli.options import int_list


def test_integer_list_options_are_parsed_once_for_every_bench():
    assert int_list("10000, 100000,", "--sizes", 300, "too small") == (10_000, 100_000)
    with pytest.raises(typer.BadParameter, match="expected comma-separated integers"):
        int_list("1,x", "--batch", 1, "too small")
    with pytest.raises(typer.BadParameter, match="too small"):
        int_list("0", "--batch", 1, "too small")
