"""Code (typescript): isAnagram(a, b), ignoring case and spaces. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a TypeScript function isAnagram(a: string, b: string): boolean that says whether two strings are anagrams, ignoring case and spaces, with tests.'
KIND = "code"
TESTS = r"""
import { test } from "node:test";
import assert from "node:assert/strict";
import { isAnagram } from "./solution";


test("anagrams", () => {
  assert.equal(isAnagram("listen", "silent"), true);
  assert.equal(isAnagram("Dormitory", "dirty room"), true);
});

test("not anagrams", () => {
  assert.equal(isAnagram("abc", "abd"), false);
  assert.equal(isAnagram("aab", "ab"), false);
});
"""
REFERENCE = r"""
export function isAnagram(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/\s/g, "").toLowerCase().split("").sort().join("");
  return norm(a) === norm(b);
}
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('typescript', TESTS, r"function\s+isAnagram\b|\bisAnagram\s*=")
