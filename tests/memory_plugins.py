"""A WORKBENCH_PLUGINS module for the memory tests on Dask: `test:coder` (and `test:coder2`, the same
script under another name), a scripted model registered in
every process that loads plugins (the test process and each Dask worker). It routes every task to the Code
specialist (the fast path: no plan), writes a test file when asked for one, and a right solution otherwise,
so the code loop's tests pass and the result becomes a verified solution in memory."""

from __future__ import annotations

from workbench.testing import register_function

TESTS = ("```python\n# test_fib.py\nfrom fib import fib\n\n\ndef test_base_cases():\n    assert (fib(0), fib(1)) == (0, 1)\n"
         "\n\ndef test_fib_of_ten():\n    assert fib(10) == 55\n```")
RIGHT = "```python\n# fib.py\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```"


def coder(messages, options):
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    if system.startswith("Pick who handles"):
        return {"route": "code"}
    if len(messages) > 1 and "Write ONLY the test file" in messages[1]["content"]:
        return TESTS
    return RIGHT


register_function("coder", coder)
register_function("coder2", coder)  # the same answers under another name: a second model to choose from
