"""The task-family set: 10 families of coding tasks, 3 variations each (other names, constants and wording;
the same underlying skill), and 10 unrelated control tasks, in one shuffled order. What it measures: whether
a workbench that solved a family before (memory on) solves the next variation more often and cheaper, and
loses nothing on unrelated tasks.

    python benchmarks/families/make.py        # writes benchmarks/families/families.jsonl (deterministic)
    workbench datasets import benchmarks/families/families.jsonl --name families
    workbench experiment run --dataset families --config benchmarks/experiments/families-memory-off.yaml \
        --config benchmarks/experiments/families-memory-on.yaml

Each case is judged by held-out tests written here from the family's reference solution (expected values
computed by it, never shown to the model); tests/test_benchmark_sets.py runs every reference against its
tests. Cases are tagged `family:NAME` or `control`, so an experiment's compare can be read per family.
"""

from __future__ import annotations

import json
import random
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "families.jsonl"
SEED = 7


@dataclass
class Variant:
    name: str                      # the function the request defines
    prompt: str                    # the request, in this variation's words
    reference: str                 # a solution (source defining `name`)
    inputs: list[tuple]            # argument tuples the held-out tests call it with
    params: dict[str, Any] = field(default_factory=dict)


def _tests(v: Variant) -> str:
    """A test file computing nothing itself: each expected value is the reference's, written as a literal."""
    scope: dict[str, Any] = {}
    exec(v.reference, scope)  # noqa: S102 - our own reference solutions
    fn = scope[v.name]
    lines = [f"from solution import {v.name}", ""]
    for i, args in enumerate(v.inputs):
        expected = fn(*args)
        call = f"{v.name}({', '.join(repr(a) for a in args)})"
        lines += [f"def test_{i}():", f"    assert {call} == {expected!r}", ""]
    return "\n".join(lines)


def _ref(src: str) -> str:
    return textwrap.dedent(src).strip() + "\n"


# --- the families: each a function of (variation index) -> Variant -------------------------------------

def clamp(i: int) -> Variant:
    name, lo, hi = [("clamp_reading", 0, 100), ("limit_speed", 10, 120), ("bound_level", -5, 5)][i]
    words = ["Write a Python function {n}(x) that returns x limited to the range from {lo} to {hi} inclusive: "
             "values below {lo} become {lo}, values above {hi} become {hi}.",
             "I need {n}(x) in Python: keep x between {lo} and {hi} (both allowed); anything smaller is {lo}, "
             "anything larger is {hi}.",
             "Python: define {n}(x) which clamps x into [{lo}, {hi}]."][i]
    return Variant(name, words.format(n=name, lo=lo, hi=hi),
                   _ref(f"def {name}(x):\n    return max({lo}, min({hi}, x))"),
                   [(lo - 7,), (lo,), ((lo + hi) // 2,), (hi,), (hi + 3,), (2.5 + lo,)])


def count_chars(i: int) -> Variant:
    name, chars = [("count_vowels", "aeiou"), ("count_hard", "kgtdbp"), ("count_marks", ".,;!?")][i]
    words = ["Write a Python function {n}(text) that counts how many characters of text are one of {c!r}, "
             "ignoring case.",
             "Python function {n}(text): return the number of characters in text that appear in the set "
             "{c!r}; upper and lower case count the same.",
             "Define {n}(text) in Python returning how often any of the characters {c!r} occur in text "
             "(case-insensitive)."][i]
    ref = f"def {name}(text):\n    return sum(1 for ch in text.lower() if ch in {chars!r})"
    return Variant(name, words.format(n=name, c=chars), _ref(ref),
                   [("",), ("Hello World",), ("AEIOU kgt KGT .,!",), ("Bob, Dad! Pip? ok.",), ("xyz",)])


def fizz(i: int) -> Variant:
    name, a, wa, b, wb = [("fizz_buzz", 3, "Fizz", 5, "Buzz"), ("ping_pong", 2, "Ping", 7, "Pong"),
                          ("tick_tock", 4, "Tick", 6, "Tock")][i]
    words = ["Write a Python function {n}(n) returning a list of strings for 1..n: multiples of {a} are "
             "'{wa}', multiples of {b} are '{wb}', multiples of both are '{wa}{wb}', others the number as a "
             "string.",
             "In Python, {n}(n) gives the list for the numbers 1 to n where a number divisible by {a} becomes "
             "'{wa}', by {b} becomes '{wb}', by both becomes '{wa}{wb}', and any other number becomes str(number).",
             "Python: {n}(n) -> list[str] over 1..n; '{wa}' for multiples of {a}, '{wb}' for multiples of {b}, "
             "'{wa}{wb}' for multiples of both, else the digits."][i]
    ref = (f"def {name}(n):\n    out = []\n    for k in range(1, n + 1):\n        s = ''\n"
           f"        if k % {a} == 0:\n            s += {wa!r}\n        if k % {b} == 0:\n            s += {wb!r}\n"
           f"        out.append(s or str(k))\n    return out")
    return Variant(name, words.format(n=name, a=a, wa=wa, b=b, wb=wb), _ref(ref), [(0,), (1,), (15,), (42,)])


def caesar(i: int) -> Variant:
    name, k = [("shift_letters", 3), ("rotate_text", 13), ("encode_shift", 5)][i]
    words = ["Write a Python function {n}(text) that shifts every letter {k} places forward in the alphabet, "
             "wrapping from z to a, keeping upper and lower case; other characters stay as they are.",
             "Python: {n}(text) applies a Caesar shift of {k} to letters (case kept, z wraps to a); digits, "
             "spaces and punctuation are unchanged.",
             "Define {n}(text) in Python: each ASCII letter moves {k} positions later in the alphabet with "
             "wrap-around and the same case; anything else is copied."][i]
    ref = (f"def {name}(text):\n    out = []\n    for ch in text:\n"
           f"        if 'a' <= ch <= 'z':\n            out.append(chr((ord(ch) - 97 + {k}) % 26 + 97))\n"
           f"        elif 'A' <= ch <= 'Z':\n            out.append(chr((ord(ch) - 65 + {k}) % 26 + 65))\n"
           f"        else:\n            out.append(ch)\n    return ''.join(out)")
    return Variant(name, words.format(n=name, k=k), _ref(ref),
                   [("",), ("abc",), ("xyz XYZ",), ("Hello, World! 123",)])


def runs(i: int) -> Variant:
    name = ["compress_runs", "run_length", "squeeze_repeats"][i]
    words = ["Write a Python function {n}(s) that run-length encodes s: each run of the same character "
             "becomes the character followed by the run's length, e.g. 'aaab' -> 'a3b1'.",
             "Python: {n}(s) returns s with consecutive repeated characters written as char+count "
             "('xxyz' gives 'x2y1z1'); the empty string gives ''.",
             "Define {n}(s) in Python: encode runs of equal characters as the character then how many times it "
             "repeats, so 'mmmn' is 'm3n1'."][i]
    ref = (f"def {name}(s):\n    out, j = [], 0\n    while j < len(s):\n        k = j\n"
           f"        while k < len(s) and s[k] == s[j]:\n            k += 1\n        out.append(s[j] + str(k - j))\n"
           f"        j = k\n    return ''.join(out)")
    return Variant(name, words.format(n=name), _ref(ref), [("",), ("a",), ("aaab",), ("abcccddddde",), ("zzzzzzzzzzzz",)])


def pairs(i: int) -> Variant:
    name, kv, sep = [("parse_settings", "=", ";"), ("parse_query", ":", "&"), ("parse_labels", "->", ",")][i]
    words = ["Write a Python function {n}(text) that parses 'key{kv}value' pairs separated by '{sep}' into a "
             "dict of strings, stripping spaces around keys and values and skipping empty pieces.",
             "Python: {n}(text) -> dict: text holds pairs like 'a{kv}1{sep}b{kv}2'; split on '{sep}', then on "
             "the first '{kv}', strip whitespace, ignore empty parts.",
             "Define {n}(text) in Python turning 'name{kv}value' items joined by '{sep}' into a dictionary "
             "(whitespace around names and values removed; blank items ignored)."][i]
    ref = (f"def {name}(text):\n    out = {{}}\n    for piece in text.split({sep!r}):\n"
           f"        if not piece.strip():\n            continue\n        key, _, value = piece.partition({kv!r})\n"
           f"        out[key.strip()] = value.strip()\n    return out")
    return Variant(name, words.format(n=name, kv=kv, sep=sep), _ref(ref),
                   [("",), (f"a{kv}1",), (f" a {kv} 1 {sep}{sep} b{kv}two {sep}",), (f"x{kv}y{kv}z{sep}k{kv}",)])


def moving(i: int) -> Variant:
    name, w = [("moving_average", 3), ("smooth", 2), ("rolling_mean", 4)][i]
    words = ["Write a Python function {n}(values) returning the averages of every window of {w} consecutive "
             "values, each rounded to 2 decimals; fewer than {w} values give [].",
             "Python: {n}(values) -> list of the means of each run of {w} neighbouring numbers (sliding by one), "
             "rounded to 2 places; an input shorter than {w} gives an empty list.",
             "Define {n}(values) in Python: a sliding window of size {w}, the mean of each window rounded to two "
             "decimals, in order."][i]
    ref = (f"def {name}(values):\n    return [round(sum(values[j:j + {w}]) / {w}, 2) "
           f"for j in range(len(values) - {w} + 1)]")
    return Variant(name, words.format(n=name, w=w), _ref(ref),
                   [([],), ([1],), ([1, 2, 3, 4, 5],), ([10, 0, 10, 0, 10, 1],), ([1.5, 2.25, 3, 7],)])


def power_digits(i: int) -> Variant:
    name, p = [("digit_square_sum", 2), ("digit_cube_sum", 3), ("digit_sum", 1)][i]
    words = ["Write a Python function {n}(n) that returns the sum of the digits of abs(n), each raised to the "
             "power {p}.",
             "Python: {n}(n) adds up every decimal digit of n (ignore the sign) raised to the {p}th power.",
             "Define {n}(n) in Python: for the absolute value of n, sum digit**{p} over its digits."][i]
    ref = f"def {name}(n):\n    return sum(int(d) ** {p} for d in str(abs(n)))"
    return Variant(name, words.format(n=name, p=p), _ref(ref), [(0,), (7,), (123,), (-908,), (99999,)])


def top_words(i: int) -> Variant:
    name, k = [("top_words", 2), ("most_common_words", 3), ("frequent_terms", 1)][i]
    words = ["Write a Python function {n}(text) returning the {k} most frequent words of text, lower-cased "
             "(a word is a run of letters), most frequent first and ties in alphabetical order.",
             "Python: {n}(text) -> list of the {k} commonest words (letters only, case-insensitive), sorted by "
             "count descending then alphabetically; fewer words give fewer results.",
             "Define {n}(text) in Python: split text into lower-case words made of letters, and return the top "
             "{k} by frequency, breaking ties alphabetically."][i]
    ref = (f"import re\nfrom collections import Counter\n\n\ndef {name}(text):\n"
           f"    counts = Counter(re.findall('[a-z]+', text.lower()))\n"
           f"    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:{k}]]")
    return Variant(name, words.format(n=name, k=k), _ref(ref),
                   [("",), ("one",), ("b a b a c",), ("The cat; the DOG, the cat! A dog? a",)])


def grades(i: int) -> Variant:
    name, t = [("letter_grade", (90, 80, 70)), ("rank_score", (85, 60, 40)), ("tier_of", (75, 50, 25))][i]
    words = ["Write a Python function {n}(score) that returns 'A' for scores of at least {a}, 'B' for at least "
             "{b}, 'C' for at least {c}, and 'D' otherwise.",
             "Python: {n}(score) maps a score to a letter: >= {a} is 'A', >= {b} is 'B', >= {c} is 'C', "
             "anything lower is 'D'.",
             "Define {n}(score) in Python giving 'A' from {a} up, 'B' from {b}, 'C' from {c}, else 'D'."][i]
    a, b, c = t
    ref = (f"def {name}(score):\n    if score >= {a}:\n        return 'A'\n    if score >= {b}:\n        return 'B'\n"
           f"    if score >= {c}:\n        return 'C'\n    return 'D'")
    return Variant(name, words.format(n=name, a=a, b=b, c=c), _ref(ref),
                   [(100,), (a,), (a - 1,), (b,), (c,), (c - 0.5,), (0,)])


FAMILIES = {"clamp": clamp, "count_chars": count_chars, "fizz": fizz, "caesar": caesar, "runs": runs,
            "pairs": pairs, "moving": moving, "power_digits": power_digits, "top_words": top_words,
            "grades": grades}

# --- the controls: unrelated tasks, one of each -----------------------------------------------------------

CONTROLS = [
    Variant("is_leap", "Write a Python function is_leap(year) that says whether year is a leap year in the "
            "Gregorian calendar.", _ref("def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)"),
            [(1900,), (2000,), (2023,), (2024,)]),
    Variant("gcd_of", "Write a Python function gcd_of(a, b) returning the greatest common divisor of two "
            "non-negative integers (gcd_of(0, 0) is 0).",
            _ref("def gcd_of(a, b):\n    while b:\n        a, b = b, a % b\n    return a"), [(0, 0), (12, 18), (17, 5), (0, 9)]),
    Variant("flatten", "Write a Python function flatten(items) that flattens arbitrarily nested lists into one "
            "flat list, keeping order.",
            _ref("def flatten(items):\n    out = []\n    for x in items:\n        if isinstance(x, list):\n"
                 "            out.extend(flatten(x))\n        else:\n            out.append(x)\n    return out"),
            [([],), ([1, [2, [3, [4]]], 5],), ([[[]], 'a'],)]),
    Variant("second_largest", "Write a Python function second_largest(numbers) returning the second largest "
            "distinct value, or None when there is none.",
            _ref("def second_largest(numbers):\n    distinct = sorted(set(numbers))\n"
                 "    return distinct[-2] if len(distinct) > 1 else None"),
            [([],), ([5],), ([3, 3, 3],), ([1, 9, 4, 9, 7],)]),
    Variant("dedupe", "Write a Python function dedupe(items) that removes repeated items, keeping the first "
            "occurrence of each, in order.",
            _ref("def dedupe(items):\n    seen, out = set(), []\n    for x in items:\n        if x not in seen:\n"
                 "            seen.add(x)\n            out.append(x)\n    return out"),
            [([],), ([1, 2, 1, 3, 2],), (['b', 'a', 'b'],)]),
    Variant("transpose", "Write a Python function transpose(matrix) that returns the transpose of a "
            "rectangular list of lists ([] for []).",
            _ref("def transpose(matrix):\n    return [list(row) for row in zip(*matrix)]"),
            [([],), ([[1, 2, 3]],), ([[1, 2], [3, 4], [5, 6]],)]),
    Variant("balanced", "Write a Python function balanced(s) that says whether the brackets ()[]{} in s are "
            "balanced and properly nested; other characters are ignored.",
            _ref("def balanced(s):\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for ch in s:\n"
                 "        if ch in '([{':\n            stack.append(ch)\n        elif ch in pairs:\n"
                 "            if not stack or stack.pop() != pairs[ch]:\n                return False\n"
                 "    return not stack"),
            [("",), ("([]{})",), ("([)]",), ("((",), ("a(b)c]",)]),
    Variant("count_primes", "Write a Python function count_primes(n) returning how many primes are less than n.",
            _ref("def count_primes(n):\n    return sum(1 for k in range(2, n) if all(k % d for d in range(2, int(k ** 0.5) + 1)))"),
            [(0,), (2,), (3,), (30,), (100,)]),
    Variant("title_words", "Write a Python function title_words(text) that capitalises the first letter of every "
            "space-separated word and lower-cases the rest, keeping the spaces as they are.",
            _ref("def title_words(text):\n    return ' '.join(w[:1].upper() + w[1:].lower() for w in text.split(' '))"),
            [("",), ("hello world",), ("mIxEd  CASE",)]),
    Variant("reverse_words", "Write a Python function reverse_words(sentence) that returns the words of "
            "sentence in reverse order, separated by single spaces.",
            _ref("def reverse_words(sentence):\n    return ' '.join(reversed(sentence.split()))"),
            [("",), ("one",), ("  the quick  brown fox ",)]),
]


def cases() -> list[dict[str, Any]]:
    rows = []
    for family, make in FAMILIES.items():
        for i in range(3):
            v = make(i)
            rows.append(_row(f"{family}-{'abc'[i]}", v, ["family", f"family:{family}"]))
    rows += [_row(f"control-{v.name}", v, ["control"]) for v in CONTROLS]
    random.Random(SEED).shuffle(rows)  # variations of a family apart, in an order memory must cope with
    return rows


def _row(case_id: str, v: Variant, tags: list[str]) -> dict[str, Any]:
    return {"id": case_id, "input": v.prompt, "tags": tags,
            "checker": {"kind": "tests", "language": "python", "tests": {"test_heldout.py": _tests(v)},
                        "solution_file": "solution.py"},
            "reference": v.reference}


def main() -> None:
    rows = cases()
    OUT.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "reference"}) + "\n" for r in rows))
    print(f"{len(rows)} cases -> {OUT}")


if __name__ == "__main__":
    main()
