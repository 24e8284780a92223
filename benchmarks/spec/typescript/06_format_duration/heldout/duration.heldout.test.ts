import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration } from "./duration";

test("examples", () => {
  assert.equal(formatDuration(3661), "1h 1m 1s");
  assert.equal(formatDuration(60), "1m");
  assert.equal(formatDuration(0), "0s");
});

test("zero units left out", () => {
  assert.equal(formatDuration(3601), "1h 1s");
  assert.equal(formatDuration(7200), "2h");
  assert.equal(formatDuration(59), "59s");
});

test("hours not capped", () => {
  assert.equal(formatDuration(90000), "25h");
});

test("bad input", () => {
  assert.throws(() => formatDuration(-1), RangeError);
  assert.throws(() => formatDuration(1.5), RangeError);
});
