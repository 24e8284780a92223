"""Pass rates of two paired runs (the same cases), with 95 % intervals.

- each arm: the Wilson score interval of its pass rate;
- the difference (B - A): Newcombe's hybrid score interval for paired proportions (1998, method 10), which
  uses the per-case pairing through the phi correlation of the 2x2 table;
- the test: exact McNemar, two-sided: a binomial test with p = 1/2 on the discordant cases (the flips).

All closed form, so the same results give the same numbers every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
METHOD = ("per arm: Wilson score 95% interval; difference B-A: Newcombe paired score interval (method 10); "
          "p: exact McNemar (two-sided binomial on the flipped cases)")


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = passed / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact p-value for b cases passing only in A and c passing only in B."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    n: int
    both: int  # pass in A and B
    only_a: int  # pass in A, fail in B
    only_b: int  # fail in A, pass in B
    neither: int

    @property
    def rate_a(self) -> float:
        return (self.both + self.only_a) / self.n if self.n else 0.0

    @property
    def rate_b(self) -> float:
        return (self.both + self.only_b) / self.n if self.n else 0.0

    @property
    def diff(self) -> float:
        return self.rate_b - self.rate_a

    def interval_a(self) -> tuple[float, float]:
        return wilson(self.both + self.only_a, self.n)

    def interval_b(self) -> tuple[float, float]:
        return wilson(self.both + self.only_b, self.n)

    def phi(self) -> float:
        a, b, c, d = self.both, self.only_a, self.only_b, self.neither
        product = (a + b) * (c + d) * (a + c) * (b + d)
        return 0.0 if product == 0 else (a * d - b * c) / math.sqrt(product)

    def diff_interval(self) -> tuple[float, float]:
        """Newcombe's method 10 for B - A."""
        if self.n == 0:
            return (-1.0, 1.0)
        pa, pb = self.rate_a, self.rate_b
        la, ua = self.interval_a()
        lb, ub = self.interval_b()
        phi = self.phi()
        low = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
        high = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
        return (max(-1.0, self.diff - low), min(1.0, self.diff + high))

    def p_value(self) -> float:
        return mcnemar_exact(self.only_a, self.only_b)


def paired(a: dict[str, bool], b: dict[str, bool]) -> Paired:
    """The 2x2 table over the cases both runs have."""
    common = sorted(set(a) & set(b))
    both = sum(a[k] and b[k] for k in common)
    only_a = sum(a[k] and not b[k] for k in common)
    only_b = sum(b[k] and not a[k] for k in common)
    return Paired(len(common), both, only_a, only_b, len(common) - both - only_a - only_b)
