import pytest
from slugify import slugify


def test_examples():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  --Already--Slugged--  ") == "already-slugged"
    assert slugify("abc def", max_length=4) == "abc"


def test_non_ascii_and_symbols_collapse():
    assert slugify("Caf\u00e9 & Cr\u00e8me 2024") == "caf-cr-me-2024"
    assert slugify("a___b") == "a-b"


def test_default_length_is_50():
    assert slugify("x" * 80) == "x" * 50


def test_nothing_left():
    assert slugify("!!!") == ""
    assert slugify("") == ""


def test_errors():
    with pytest.raises(TypeError):
        slugify(42)
    with pytest.raises(ValueError):
        slugify("abc", max_length=0)
