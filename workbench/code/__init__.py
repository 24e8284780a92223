"""The code vertical: turn a request into code that its examples and tests pass in the sandbox.

    from workbench.code import solve
    result = solve("Write fib.py with fib(n) for n >= 0; fib(0) == 0 ...", "python", model="local")
    result.ok, result.summary(), result.write("out/")
"""

from workbench.code.loop import CodeResult, Round, solve
from workbench.code.task import CodeTask, CodeTaskError, parse_task

__all__ = ["CodeResult", "CodeTask", "CodeTaskError", "Round", "parse_task", "solve"]
