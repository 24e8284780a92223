import pytest
from passwords import check_password


def test_examples():
    assert check_password("Secret123") == []
    assert check_password("abc") == ["length", "upper", "digit"]


def test_all_broken_in_order():
    assert check_password(" ") == ["length", "upper", "lower", "digit", "space"]


def test_space_only():
    assert check_password("Secret 123") == ["space"]
    assert check_password("Secret\t123") == ["space"]


def test_exactly_eight():
    assert check_password("Abcdefg1") == []
    assert check_password("Abcdef1") == ["length"]


def test_type():
    with pytest.raises(TypeError):
        check_password(12345678)
