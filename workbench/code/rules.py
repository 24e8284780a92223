"""The rules a request states, and the tests written one per rule.

    stated_rules("Write chunk.ts ...\\n\\nRules:\\n- Throw a RangeError if size ...\\n- Do not modify items ...")
    # ["Throw a RangeError if size ...", "Do not modify items ..."]
    is_rule_test("test_chunk::test_rule_2_input_unchanged")   # True

A small model asked for "one test for every rule" tests the happy path and the examples again, and skips
the rules the request spells out (an error to raise, an input not to modify): its code then passes its
own tests and misses exactly those rules. Listed one by one, numbered, each rule gets its own test, named
after its number, so a failure says which rule the code breaks — the one failure of a model-written
test that is worth a fix even when no other answer passes it yet.
"""

from __future__ import annotations

import re

MAX_RULES = 8
MAX_RULE_CHARS = 240
MIN_RULES = 2  # one sentence that sounds like a rule is most often the task's own description

_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+(?P<text>\S.*)$")
_EXAMPLE = re.compile(r"(?:==|->|=>|➞|\breturns?\b\s*[\[\"'\d-]).*$|^\s*(?:>>>|Examples?:|For example)", re.IGNORECASE)
_RULE_WORDS = re.compile(r"\b(?:raises?|throws?|must|never|do not|don't|does not|should not|otherwise|at least|"
                         r"at most|is not accepted|are not accepted|counts? as)\b", re.IGNORECASE)
# An input constraint ("1 <= len(arr) <= 100") says what callers pass, not what the code must do; text that
# runs into a docstring's end or its doctests is not a rule either.
_CONSTRAINT = re.compile(r"[\w\s\[\]():.,^*+/<>=-]*(?:<=|>=|<|>)[\w\s\[\]():.,^*+/<>=-]*[\"']*\s*")
_NOT_A_RULE = re.compile(r'"""|\'\'\'|>>>')
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_RULE_TEST = re.compile(r"rule[ _-]?(\d+)", re.IGNORECASE)

# How a rule's test is named in each language, so a failing test says which rule it checks.
RULE_TEST_NAMES = {
    "python": "test_rule_{n}_WHAT_IT_CHECKS",
    "typescript": 'test("rule {n}: WHAT IT CHECKS", ...)',
    "java": "@Test void rule{n}WhatItChecks()",
}


def stated_rules(text: str) -> list[str]:
    """The request's rules: its bullet points (a line indented under one continues it) and the sentences
    outside them that say what must or must not happen (raise, throw, must, never, do not ...); worked
    examples left out (they are tested as examples). Fewer than MIN_RULES: none."""
    rules: list[str] = []
    prose: list[str] = []
    bullet: list[str] | None = None
    for line in text.splitlines():
        match = _BULLET.match(line)
        if match:
            bullet = [match["text"].strip()]
            rules.append("")  # filled when the bullet ends
            rules[-1] = " ".join(bullet)
        elif bullet is not None and line.startswith((" ", "\t")) and line.strip():
            bullet.append(line.strip())
            rules[-1] = " ".join(bullet)
        else:
            bullet = None
            prose.append(line)
    paragraph = " ".join(line.strip() for line in prose if line.strip() and not _EXAMPLE.search(line))
    rules += [s.strip() for s in _SENTENCE.split(paragraph) if _RULE_WORDS.search(s)]
    kept = [r[:MAX_RULE_CHARS] for r in dict.fromkeys(rules)
            if r and not _EXAMPLE.search(r) and not _NOT_A_RULE.search(r) and not _CONSTRAINT.fullmatch(r)]
    return kept[:MAX_RULES] if len(kept) >= MIN_RULES else []


def is_rule_test(test_id: str) -> bool:
    """A test written for one numbered rule (`test_rule_2_...`, "rule 2: ...", `rule2...()`)."""
    return bool(_RULE_TEST.search(test_id))
