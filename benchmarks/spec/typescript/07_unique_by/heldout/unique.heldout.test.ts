import { test } from "node:test";
import assert from "node:assert/strict";
import { uniqueBy } from "./unique";

test("example keeps the first", () => {
  const items = [{ id: 1, v: "a" }, { id: 2, v: "b" }, { id: 1, v: "c" }];
  assert.deepStrictEqual(uniqueBy(items, (x) => x.id), [{ id: 1, v: "a" }, { id: 2, v: "b" }]);
});

test("NaN keys are equal", () => {
  assert.deepStrictEqual(uniqueBy([NaN, 1, NaN], (x) => x), [NaN, 1]);
});

test("new array, input untouched", () => {
  const items = [3, 3, 4];
  const out = uniqueBy(items, (x) => x);
  assert.deepStrictEqual(out, [3, 4]);
  assert.deepStrictEqual(items, [3, 3, 4]);
  assert.notEqual(uniqueBy(items, (x) => String(x) + Math.random()), items);
});
