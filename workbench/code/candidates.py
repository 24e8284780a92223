"""Choosing among candidates by agreement, never by hidden tests.

    pool = [Candidate(1, files, verdict), Candidate(2, files, verdict), ...]
    best(pool)                  # the candidate to keep
    trusted_failures(c, pool)   # c's failing tests that another candidate passes

The order: a real solution before a stub or nothing; then the request's own examples (the one part
of the spec no model wrote); then one that loads, compiles and finishes before one that does not;
then dual execution agreement over the model's tests, as in CodeT (Chen et al., 2022): candidates
that pass exactly the same tests form a group, and a group counts its size times the tests it
passes, so a test only the one candidate fits counts for little, and tests that independent
candidates agree on count for much. The earliest candidate wins a tie.

The first round is the plain answer a single call gives, and the loop must never end worse than that
call: once it passes the request's examples it is replaced only by a candidate that passes every test
it passes and more. Agreement alone is not enough there: two samples that share a misreading pass the
same tests and outvote a right first answer (HumanEval/122: negative numbers dropped by both samples).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.code.judge import Verdict


@dataclass
class Candidate:
    number: int  # the round that wrote it
    files: dict[str, str]  # the solution's files, as run (formatted)
    verdict: Verdict
    unwritten: bool = False  # the task's function was handed back as a stub

    @property
    def real(self) -> bool:
        return bool(self.files) and not self.unwritten


def agreement(candidate: Candidate, pool: list[Candidate]) -> int:
    """CodeT's score: (candidates passing exactly the same tests) × (tests they pass)."""
    passed = candidate.verdict.passed_tests
    group = sum(1 for c in pool if c.real and c.verdict.passed_tests == passed)
    return group * len(passed)


def rank(candidate: Candidate, pool: list[Candidate]) -> tuple[int, int, int, int, int]:
    v = candidate.verdict
    return int(candidate.real), v.examples_passed, int(not v.mechanical), agreement(candidate, pool), -candidate.number


def best(pool: list[Candidate]) -> Candidate | None:
    if not pool:
        return None
    top = max(pool, key=lambda c: rank(c, pool))
    plain = next((c for c in pool if c.number == 1 and c.real), None)
    if plain is None or top is plain or plain.verdict.examples_passed < len(plain.verdict.examples):
        return top  # no plain answer to keep, or one the request's own examples already call wrong
    if plain.verdict.mechanical and not top.verdict.mechanical:
        return top  # the plain answer does not load, compile or finish, and this one does
    return top if dominates(top, plain) else plain


def dominates(candidate: Candidate, other: Candidate) -> bool:
    """The candidate passes every test the other passes, and more."""
    return candidate.verdict.passed_tests > other.verdict.passed_tests


def trusted_failures(candidate: Candidate, pool: list[Candidate]) -> set[str]:
    """The candidate's failing tests that some other real candidate passes: a test two readings of the
    task disagree on, consistent with at least one of them, is worth a fix; a test every candidate
    fails may be the wrong one."""
    failing = candidate.verdict.other_tests - candidate.verdict.passed_tests
    others = [c for c in pool if c is not candidate and c.real]
    return {t for t in failing if any(t in c.verdict.passed_tests for c in others)}
