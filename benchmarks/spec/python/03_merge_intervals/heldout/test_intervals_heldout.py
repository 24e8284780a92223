import copy

import pytest
from intervals import merge_intervals


def test_examples():
    assert merge_intervals([[1, 3], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]
    assert merge_intervals([[5, 7], [1, 2], [2, 4]]) == [[1, 4], [5, 7]]


def test_contained_and_single():
    assert merge_intervals([[1, 10], [2, 3]]) == [[1, 10]]
    assert merge_intervals([[4, 4]]) == [[4, 4]]


def test_empty():
    assert merge_intervals([]) == []


def test_input_not_modified():
    data = [[3, 5], [1, 4]]
    before = copy.deepcopy(data)
    merge_intervals(data)
    assert data == before


def test_result_does_not_share_inner_lists():
    data = [[1, 2]]
    out = merge_intervals(data)
    out[0][1] = 99
    assert data == [[1, 2]]


def test_bad_interval():
    with pytest.raises(ValueError):
        merge_intervals([[1, 2], [5, 3]])
