import { test } from "node:test";
import assert from "node:assert/strict";
import { toSnakeCase } from "./case";

test("examples", () => {
  assert.equal(toSnakeCase("helloWorld"), "hello_world");
  assert.equal(toSnakeCase("HTTPServer"), "http_server");
  assert.equal(toSnakeCase("getUserID"), "get_user_id");
});

test("pascal case and digits", () => {
  assert.equal(toSnakeCase("ParseXMLFile"), "parse_xml_file");
  assert.equal(toSnakeCase("version2Beta"), "version2_beta");
});

test("unchanged", () => {
  assert.equal(toSnakeCase("already_snake"), "already_snake");
  assert.equal(toSnakeCase(""), "");
});
