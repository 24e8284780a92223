"""Code (typescript): countWords(s) over whitespace. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a TypeScript function countWords(s: string): number that counts the words in a string, where words are separated by any amount of whitespace, with tests.'
KIND = "code"
TESTS = r"""
import { test } from "node:test";
import assert from "node:assert/strict";
import { countWords } from "./solution";


test("simple sentence", () => {
  assert.equal(countWords("the quick brown fox"), 4);
});

test("extra whitespace", () => {
  assert.equal(countWords("  hello   world \n"), 2);
});

test("empty and blank", () => {
  assert.equal(countWords(""), 0);
  assert.equal(countWords("   "), 0);
});
"""
REFERENCE = r"""
export function countWords(s: string): number {
  return s.split(/\s+/).filter((w) => w.length > 0).length;
}
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('typescript', TESTS, r"function\s+countWords\b|\bcountWords\s*=")
