"""Code (typescript): clamp(value, min, max). Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a TypeScript function clamp(value: number, min: number, max: number): number that limits value to the range min..max, with tests.'
KIND = "code"
TESTS = r"""
import { test } from "node:test";
import assert from "node:assert/strict";
import { clamp } from "./solution";


test("inside the range", () => {
  assert.equal(clamp(5, 0, 10), 5);
});

test("below and above", () => {
  assert.equal(clamp(-3, 0, 10), 0);
  assert.equal(clamp(11, 0, 10), 10);
});

test("on the bounds", () => {
  assert.equal(clamp(0, 0, 10), 0);
  assert.equal(clamp(10, 0, 10), 10);
});
"""
REFERENCE = r"""
export function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('typescript', TESTS, r"function\s+clamp\b|\bclamp\s*=")
