import { test } from "node:test";
import assert from "node:assert/strict";
import { Stack } from "./stack";

test("push pop peek size", () => {
  const s = new Stack<number>();
  s.push(1);
  s.push(2);
  assert.equal(s.peek(), 2);
  assert.equal(s.size, 2);
  assert.equal(s.pop(), 2);
  assert.equal(s.size, 1);
  assert.equal(s.isEmpty(), false);
});

test("empty stack", () => {
  const s = new Stack<string>();
  assert.equal(s.isEmpty(), true);
  assert.equal(s.peek(), undefined);
  assert.equal(s.size, 0);
  assert.throws(() => s.pop(), { message: "empty stack" });
});
