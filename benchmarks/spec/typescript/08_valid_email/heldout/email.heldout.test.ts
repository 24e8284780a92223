import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidEmail } from "./email";

test("valid", () => {
  for (const ok of ["ann.lee+tag@mail.example.com", "a@b.co", "x_y-z@sub-domain.example.org"]) {
    assert.equal(isValidEmail(ok), true, ok);
  }
});

test("invalid", () => {
  for (const bad of [
    "ann@localhost",
    "@example.com",
    "ann@@example.com",
    "a@b@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "an n@example.com",
    "ann@-bad.com",
    "ann@bad-.com",
    "ann@example..com",
    "ann@example.c",
    "ann@example.c0m",
    "",
  ]) {
    assert.equal(isValidEmail(bad), false, bad);
  }
});
