import { test } from "node:test";
import assert from "node:assert/strict";
import { groupBy } from "./group";

test("example", () => {
  assert.deepStrictEqual(groupBy(["apple", "avocado", "banana"], (s) => s[0]), {
    a: ["apple", "avocado"],
    b: ["banana"],
  });
});

test("key order is first appearance", () => {
  assert.deepStrictEqual(Object.keys(groupBy(["z1", "a1", "z2"], (s) => s[0])), ["z", "a"]);
});

test("same objects, input untouched", () => {
  const items = [{ t: "x" }, { t: "y" }, { t: "x" }];
  const out = groupBy(items, (i) => i.t);
  assert.equal(out.x[1], items[2]);
  assert.equal(items.length, 3);
});

test("empty", () => {
  assert.deepStrictEqual(groupBy([], (s: string) => s), {});
});
