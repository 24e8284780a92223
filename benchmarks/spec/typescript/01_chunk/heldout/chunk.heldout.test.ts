import { test } from "node:test";
import assert from "node:assert/strict";
import { chunk } from "./chunk";

test("examples", () => {
  assert.deepStrictEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepStrictEqual(chunk([], 3), []);
});

test("size larger than the array", () => {
  assert.deepStrictEqual(chunk(["a", "b"], 5), [["a", "b"]]);
});

test("bad sizes throw RangeError", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => chunk([1, 2], bad), RangeError);
  }
});

test("input not modified", () => {
  const items = [1, 2, 3];
  chunk(items, 2);
  assert.deepStrictEqual(items, [1, 2, 3]);
});
