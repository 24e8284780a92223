import { test } from "node:test";
import assert from "node:assert/strict";
import { transpose } from "./matrix";

test("examples", () => {
  assert.deepStrictEqual(transpose([[1, 2, 3], [4, 5, 6]]), [[1, 4], [2, 5], [3, 6]]);
  assert.deepStrictEqual(transpose([[7]]), [[7]]);
});

test("empty", () => {
  assert.deepStrictEqual(transpose([]), []);
});

test("ragged", () => {
  assert.throws(() => transpose([[1, 2], [3]]), { message: "ragged matrix" });
});

test("input untouched", () => {
  const m = [[1, 2], [3, 4]];
  const out = transpose(m);
  out[0][0] = 99;
  assert.deepStrictEqual(m, [[1, 2], [3, 4]]);
});
