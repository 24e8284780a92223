"""Code (typescript): maxOf(numbers), undefined when empty. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a TypeScript function maxOf(numbers: number[]) that returns the largest number, or undefined for an empty array, with tests.'
KIND = "code"
TESTS = r"""
import { test } from "node:test";
import assert from "node:assert/strict";
import { maxOf } from "./solution";


test("largest of several", () => {
  assert.equal(maxOf([3, 9, 2]), 9);
  assert.equal(maxOf([-5, -2, -9]), -2);
});

test("empty array gives undefined", () => {
  assert.equal(maxOf([]), undefined);
});
"""
REFERENCE = r"""
export function maxOf(numbers: number[]): number | undefined {
  return numbers.length ? Math.max(...numbers) : undefined;
}
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('typescript', TESTS, r"function\s+maxOf\b|\bmaxOf\s*=")
