import { test } from "node:test";
import assert from "node:assert/strict";
import { topN } from "./top";

test("examples", () => {
  assert.deepStrictEqual(topN({ ann: 5, bob: 9, cid: 5 }, 2), ["bob", "ann"]);
  assert.deepStrictEqual(topN({}, 3), []);
});

test("ties by name, all when n is large", () => {
  assert.deepStrictEqual(topN({ zed: 1, amy: 1, Bea: 1 }, 10), ["Bea", "amy", "zed"]);
});

test("zero", () => {
  assert.deepStrictEqual(topN({ a: 1 }, 0), []);
});

test("bad n", () => {
  assert.throws(() => topN({ a: 1 }, -1), RangeError);
  assert.throws(() => topN({ a: 1 }, 1.5), RangeError);
});
