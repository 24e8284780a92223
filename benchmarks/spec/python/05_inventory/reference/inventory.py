class InsufficientStock(Exception):
    """Raised when more units are removed than are in stock."""


class Inventory:
    def __init__(self):
        self._stock = {}

    @staticmethod
    def _check(qty):
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ValueError("qty must be an int greater than 0")

    def add(self, item, qty):
        self._check(qty)
        self._stock[item] = self._stock.get(item, 0) + qty

    def remove(self, item, qty):
        self._check(qty)
        have = self._stock.get(item, 0)
        if have < qty:
            raise InsufficientStock(f"only {have} of {item}")
        if have == qty:
            del self._stock[item]
        else:
            self._stock[item] = have - qty

    def count(self, item):
        return self._stock.get(item, 0)

    def items(self):
        return sorted(self._stock.items())
