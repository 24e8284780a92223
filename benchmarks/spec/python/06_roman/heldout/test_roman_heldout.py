import pytest
from roman import to_roman


def test_examples():
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(4) == "IV"
    assert to_roman(3999) == "MMMCMXCIX"


def test_more():
    assert [to_roman(i) for i in (1, 9, 14, 40, 90, 400, 2024)] == ["I", "IX", "XIV", "XL", "XC", "CD", "MMXXIV"]


@pytest.mark.parametrize("bad", [0, -5, 4000])
def test_out_of_range(bad):
    with pytest.raises(ValueError):
        to_roman(bad)


@pytest.mark.parametrize("bad", [True, 3.0, "7", None])
def test_not_an_int(bad):
    with pytest.raises(TypeError):
        to_roman(bad)
