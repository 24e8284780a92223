import pytest
from stats import moving_average


def test_examples():
    assert moving_average([1, 2, 3, 4], 2) == pytest.approx([1.5, 2.5, 3.5])
    assert moving_average([5], 1) == pytest.approx([5.0])


def test_whole_list():
    assert moving_average([2, 4, 9], 3) == pytest.approx([5.0])


def test_floats_returned():
    out = moving_average([1, 3], 1)
    assert out == [1.0, 3.0] and all(isinstance(x, float) for x in out)


@pytest.mark.parametrize("window", [0, -1, 4])
def test_bad_window(window):
    with pytest.raises(ValueError):
        moving_average([1, 2, 3], window)


def test_empty_list_raises():
    with pytest.raises(ValueError):
        moving_average([], 1)


def test_not_modified():
    values = [3, 1, 2]
    moving_average(values, 2)
    assert values == [3, 1, 2]
