import pytest
from wordfreq import top_words


def test_examples():
    assert top_words("b a b c a b", 2) == [("b", 3), ("a", 2)]
    assert top_words("Dog dog CAT", 5) == [("dog", 2), ("cat", 1)]


def test_ties_alphabetical():
    assert top_words("pear apple fig", 3) == [("apple", 1), ("fig", 1), ("pear", 1)]


def test_punctuation_and_digits_separate():
    assert top_words("it's 2 it-is", 10) == [("it", 2), ("is", 1), ("s", 1)]


def test_zero_and_empty():
    assert top_words("a b", 0) == []
    assert top_words("", 3) == []


def test_negative_k():
    with pytest.raises(ValueError):
        top_words("a", -1)
