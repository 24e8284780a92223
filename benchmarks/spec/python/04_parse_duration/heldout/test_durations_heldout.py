import pytest
from durations import parse_duration


def test_examples():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("2h0m5s") == 7205


def test_single_units():
    assert parse_duration("3h") == 10800
    assert parse_duration("15m") == 900
    assert parse_duration("0s") == 0


@pytest.mark.parametrize("bad", ["", "1m1h", "1h1h", "5", "-1s", " 1h", "1h ", "1d", "h", "1.5h"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_not_a_string():
    with pytest.raises(TypeError):
        parse_duration(90)
