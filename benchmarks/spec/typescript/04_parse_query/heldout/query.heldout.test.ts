import { test } from "node:test";
import assert from "node:assert/strict";
import { parseQuery } from "./query";

test("examples", () => {
  assert.deepStrictEqual(parseQuery("?a=1&b=hello+world"), { a: "1", b: "hello world" });
  assert.deepStrictEqual(parseQuery("t=x&t=y&flag"), { t: ["x", "y"], flag: "" });
});

test("percent decoding and first equals sign", () => {
  assert.deepStrictEqual(parseQuery("q=a%26b&eq=x=y&n%20k=v"), { q: "a&b", eq: "x=y", "n k": "v" });
});

test("three repeats and empty pairs", () => {
  assert.deepStrictEqual(parseQuery("a=1&&a=2&a=3"), { a: ["1", "2", "3"] });
});

test("empty", () => {
  assert.deepStrictEqual(parseQuery(""), {});
  assert.deepStrictEqual(parseQuery("?"), {});
});
