"""Multi: TypeScript code (held-out tests) and a sentence on when an average misleads."""

from _checks import AllOf, HeldOutTests, Mentions

PROMPT = ("Write a TypeScript function average(xs: number[]): number that returns the mean, or 0 for an empty "
          "array, then explain in one sentence when an average can be misleading.")
KIND = "multi"
TESTS = r"""
import { test } from "node:test";
import assert from "node:assert/strict";
import { average } from "./solution";

test("mean of several", () => {
  assert.equal(average([1, 2, 3, 4]), 2.5);
  assert.equal(average([-2, 2]), 0);
});

test("empty array gives 0", () => {
  assert.equal(average([]), 0);
});
"""
REFERENCE = r"""
export function average(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
"""
check = AllOf(HeldOutTests("typescript", TESTS, r"function\s+average\b|\baverage\s*="),
              Mentions(r"outlier|skew\w*|extreme|unusual|distribut\w*"))
