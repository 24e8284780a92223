"""Worked examples in a task's text, as checks the code must pass.

    find_examples("fib(n) ... fib(10) returns 55", "fib")[0].check  ->  "fib(10) == 55"

Three shapes: doctests (`>>> f(2)` with `4` on the next line, or `>>> f(2) == 4`), examples in prose
(`f(2) == 4`, `f(2) === 4`, `f(2) -> 4`, `f(2) ➞ 4`, `f(2) returns 4`, `f(2) is 4`, `# => 4` ...), and,
when there are neither, inputs and output (`Input: arr = [1, 2], k = 1` / `Output: [2]`, `For lst = [1, 2]
the output should be 5`). When the text has doctests, they are the examples (their prose around them
tends to be looser). The code loop
turns every example into a named test that the model cannot rewrite; the HumanEval benchmark uses
the same examples to choose among resampled answers. An example whose expected value is not a
Python literal is kept only as a doctest (its `check` is None).
"""

from __future__ import annotations

import ast
import doctest
import re
from dataclasses import dataclass

_ARROW = re.compile(r"[ \t]*(?:#[ \t]*)?(?:===|==>|==|->|=>|➞|\u2192|should return|returns?|gives|is|=)"
                    r"[ \t]*:?[ \t]*", re.IGNORECASE)
# "Input: arr = [1, 2], k = 1" then "Output: [2]" on the next line; "For lst = [1, 2] the output should be 5"
_INPUT_OUTPUT = re.compile(r"(?im)^[ \t]*(?:Input[ \t]*:[ \t]*(?P<args>[^\n]*?)[ \t]*\n[ \t]*Output[ \t]*:"
                           r"|For[ \t]+(?P<for>[^\n]*?),?[ \t]+the[ \t]+(?:output|result)[ \t]+should[ \t]+be)"
                           r"[ \t]*(?P<want>[^\n]+)")
_BOOLEAN_WORDS = {"true": "True", "false": "False"}  # `is_even(2) => true`: the prose's words for Python's values

_LONE_EQUALS = re.compile(r"(?<![<>!=])=(?![=>])")  # `19 - 5 - 6 = 8`, not the `<=` of a rule
_QUOTES_AT_END = re.compile(r"(?m)(?:\"\"\"|'''|^[ \t]*```[\w-]*)[ \t]*$")


@dataclass(frozen=True)
class Example:
    source: str  # what doctest runs: an expression or a statement
    want: str  # what it must print ("True" for a check)
    shown: str  # the example in words, as a rule: "f(2) returns 4"

    @property
    def check(self) -> str | None:
        """A Python expression that is true when the example holds; None for a doctest that prints."""
        return self.source if self.want == "True" and _parses(self.source) else None


def find_examples(text: str, name: str) -> list[Example]:
    """The examples of `name` in the text: its doctests if it has any, else the prose examples; each once."""
    text = _QUOTES_AT_END.sub("", text)  # a docstring's closing quotes or a fence would join the last output
    found = [_from_doctest(e.source.strip(), e.want.strip()) for e in _doctests(text)]
    found = found or _from_prose(text, name) or _from_input_output(text, name)
    return list({e.source: e for e in found}.values())


def _from_doctest(source: str, want: str) -> Example:
    if not _parses(source):  # a statement: run as doctest runs it
        return Example(source, want, f"{source} gives {want}")
    tree = ast.parse(source, mode="eval")
    expr = ast.unparse(tree)  # without comments, so it can be wrapped
    if not want and isinstance(tree.body, ast.Compare):
        return Example(expr, "True", expr)
    literal = literal_source(want)  # "21" and '21' are the same answer
    if literal is not None:
        return _check(expr, literal)
    return Example(source, want, f"{source} gives {want}")


def _from_prose(text: str, name: str) -> list[Example]:
    found = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", text):
        if re.search(r"(?:\bdef|>>>)[ \t]*$", text[:match.start()]):
            continue  # a definition, or a doctest (those are read as doctests)
        end = closing_paren(text, match.end() - 1)
        if end is None:
            continue  # the call goes on over several lines
        call, rest = text[match.start():end + 1], text[end + 1:]
        arrow = _ARROW.match(rest)
        if not arrow or not _literal_call(call):
            continue  # `f(n) = 1 + n / 2` is a rule, not an example
        line = rest[arrow.end():].split("\n", 1)[0]
        want = _want(line)
        if want is not None:
            found.append(_check(ast.unparse(ast.parse(call, mode="eval")), want))
    return found


def _from_input_output(text: str, name: str) -> list[Example]:
    """Examples written as the inputs and the output ("Input: arr = [1, 2], k = 1" / "Output: [2]", or "For
    lst = [1, 2] the output should be 5"), as calls of `name`: by keyword when the names are exactly the
    parameters of the text's `def name(...)`, else by position when there are as many values as it has
    parameters (or no definition is shown)."""
    params = _parameters(text, name)
    found = []
    for match in _INPUT_OUTPUT.finditer(text):
        args = (match.group("args") if match.group("args") is not None else match.group("for")).strip().rstrip(",")
        want = _want(match.group("want"))
        try:
            call = ast.parse(f"{name}({args})", mode="eval").body
        except SyntaxError:
            continue
        if want is None or not args or not isinstance(call, ast.Call) or not _literal_call(ast.unparse(call)):
            continue
        values = [*call.args, *(k.value for k in call.keywords)]
        named = [k.arg for k in call.keywords]
        if call.args and call.keywords:
            continue  # half named: too loose to trust
        if params is not None and len(values) != len(params):
            continue
        if named and params is not None and sorted(named) == sorted(params):
            shown = call
        else:
            shown = ast.Call(func=call.func, args=values, keywords=[])
        found.append(_check(ast.unparse(shown), want))
    return found


def _parameters(text: str, name: str) -> list[str] | None:
    """The parameter names of `def name(...)` in the text, None when it does not define it."""
    match = re.search(rf"\bdef[ \t]+{re.escape(name)}[ \t]*(\([^)]*\))", text)
    if match is None:
        return None
    try:
        tree = ast.parse(f"def {name}{match.group(1)}: pass")
    except SyntaxError:
        return None
    arguments = tree.body[0].args  # type: ignore[attr-defined]
    return [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]


def _want(line: str) -> str | None:
    """The expected value at the start of `line`, as a literal's source (None when there is none)."""
    candidates = _candidates(line)
    candidates += [_BOOLEAN_WORDS[c.lower()] for c in candidates if c.lower() in _BOOLEAN_WORDS]
    return next((w for w in map(literal_source, candidates) if w is not None), None)


def _literal_call(call: str) -> bool:
    """A call whose arguments are all values: `f(2, [1])`, not `f(n)`."""
    try:
        node = ast.parse(call, mode="eval").body
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (SyntaxError, ValueError, TypeError, AttributeError, MemoryError, RecursionError):
        return False
    return True


def _check(expr: str, literal: str) -> Example:
    return Example(ast.unparse(ast.parse(f"({expr}) == ({literal})", mode="eval")), "True",
                   f"{expr} returns {literal}")


def _candidates(line: str) -> list[str]:
    """The expected value without sentence punctuation, as written, before a comment, after a worked
    sum's `=`, or its first word (prose often follows it)."""
    line = line.strip().strip("`")
    if not line:
        return []
    return list(dict.fromkeys(x.strip() for x in (line.rstrip(".;,"), line, line.split("#")[0],
                                                  _LONE_EQUALS.split(line)[-1], line.split(" ")[0].rstrip(".;,`"))
                              if x.strip()))


def _doctests(text: str) -> list[doctest.Example]:
    """The `>>>` examples of the text, each parsed on its own: one that doctest cannot parse (a real
    newline inside a string) is left out instead of losing the others."""
    out = []
    for chunk in re.split(r"(?m)^(?=[ \t]*>>>)", text):
        try:
            out += doctest.DocTestParser().get_examples(chunk)
        except ValueError:
            continue
    return out


def closing_paren(text: str, start: int, *, code: bool = False) -> int | None:
    """Index of the bracket closing the one at `start`; brackets inside string literals do not count.
    None when the line ends first; with code=True (C, Java, TypeScript source) over lines, and brackets
    in `//` and `/* */` comments and in `template` strings do not count either."""
    quotes = "'\"`" if code else "'\""
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n" and not code:
            return None
        if code and text.startswith(("//", "/*"), i):
            i = text.find("\n" if text[i + 1] == "/" else "*/", i + 2)
            if i < 0:
                return None
            i += 0 if text[i] == "\n" else 1
        elif ch in quotes:
            i += 1
            while i < n and text[i] != ch:
                if text[i] == "\n" and not code:
                    return None
                i += 2 if text[i] == "\\" else 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def literal_source(text: str) -> str | None:
    """The text as a literal's source (comments dropped, `16.` -> `16.0`), or None if it is not one."""
    try:
        tree = ast.parse(text, mode="eval")
        ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return ast.unparse(tree)


def _parses(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True

