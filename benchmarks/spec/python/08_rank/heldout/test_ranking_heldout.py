from ranking import rank


def test_example():
    assert rank({"ann": 10, "bob": 7, "cid": 10, "dan": 3}) == [("ann", 10, 1), ("cid", 10, 1), ("bob", 7, 3),
                                                               ("dan", 3, 4)]


def test_tie_in_the_middle():
    assert rank({"a": 5, "c": 3, "b": 3, "d": 1}) == [("a", 5, 1), ("b", 3, 2), ("c", 3, 2), ("d", 1, 4)]


def test_all_tied():
    assert rank({"z": 0, "y": 0}) == [("y", 0, 1), ("z", 0, 1)]


def test_empty_and_no_mutation():
    assert rank({}) == []
    scores = {"a": 1, "b": 2}
    rank(scores)
    assert scores == {"a": 1, "b": 2} and list(scores) == ["a", "b"]
