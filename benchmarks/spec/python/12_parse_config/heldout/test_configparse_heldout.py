import pytest
from configparse import parse_config


def test_examples():
    assert parse_config("a = 1\nb=x=y") == {"a": "1", "b": "x=y"}
    assert parse_config("# c\n\nname = Ann ") == {"name": "Ann"}


def test_empty_value_is_allowed():
    assert parse_config("k =") == {"k": ""}


def test_empty_text():
    assert parse_config("") == {}


def test_missing_equals_names_the_line():
    with pytest.raises(ValueError, match="line 3"):
        parse_config("a = 1\n# note\nbroken line")


def test_empty_key():
    with pytest.raises(ValueError, match="line 1"):
        parse_config(" = 5")


def test_duplicate_key_named():
    with pytest.raises(ValueError, match="port"):
        parse_config("port = 1\nport = 2")
