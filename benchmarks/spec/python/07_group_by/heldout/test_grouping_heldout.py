import copy

import pytest
from grouping import group_by


def test_example():
    records = [{"k": 1, "n": "a"}, {"k": 2}, {"k": 1, "n": "b"}]
    assert group_by(records, "k") == {1: [{"k": 1, "n": "a"}, {"k": 1, "n": "b"}], 2: [{"k": 2}]}


def test_key_order_is_first_appearance():
    records = [{"c": "z"}, {"c": "a"}, {"c": "z"}]
    assert list(group_by(records, "c")) == ["z", "a"]


def test_missing_key_left_out():
    assert group_by([{"x": 1}, {"k": 3}], "k") == {3: [{"k": 3}]}
    assert group_by([], "k") == {}


def test_same_objects_and_no_mutation():
    records = [{"k": 1}, {"k": 1, "v": 2}]
    before = copy.deepcopy(records)
    out = group_by(records, "k")
    assert out[1][0] is records[0]
    assert records == before


def test_not_a_list():
    with pytest.raises(TypeError):
        group_by(({"k": 1},), "k")
