import pytest
from inventory import InsufficientStock, Inventory


def test_add_remove_count():
    inv = Inventory()
    inv.add("apple", 3)
    inv.remove("apple", 1)
    assert inv.count("apple") == 2
    assert inv.count("pear") == 0


def test_items_sorted_and_zero_removed():
    inv = Inventory()
    inv.add("pear", 1)
    inv.add("apple", 2)
    inv.add("fig", 4)
    inv.remove("pear", 1)
    assert inv.items() == [("apple", 2), ("fig", 4)]


def test_insufficient_changes_nothing():
    inv = Inventory()
    inv.add("apple", 2)
    with pytest.raises(InsufficientStock):
        inv.remove("apple", 3)
    assert inv.count("apple") == 2
    with pytest.raises(InsufficientStock):
        inv.remove("kiwi", 1)


def test_insufficient_is_an_exception_class():
    assert issubclass(InsufficientStock, Exception)


@pytest.mark.parametrize("qty", [0, -1, 1.5, True, "2"])
def test_bad_quantities(qty):
    inv = Inventory()
    inv.add("apple", 5)
    with pytest.raises(ValueError):
        inv.add("apple", qty)
    with pytest.raises(ValueError):
        inv.remove("apple", qty)
    assert inv.count("apple") == 5
