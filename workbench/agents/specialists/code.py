"""Code: writes code, and with the sandbox code loop (the packaged agents.yaml) tests and repairs it.

The seam is one function call: `handle` runs `options["code_loop"]` (an import path to
`fn(call: SpecialistCall) -> SubtaskResult`, set in agents.yaml) when given, else `write_code`, which
writes code without running it and says so (for a machine without a sandbox, and for tests).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from workbench.agents.agent import Limits
from workbench.agents.specialist import Specialist, SpecialistCall, SubtaskResult
from workbench.errors import ConfigError

SYSTEM_PROMPT = (
    "You are the Code specialist. Write correct, complete code for the request in ONE fenced code block "
    "(```python ... ``` unless another language is asked for). Handle the edge cases the request names. "
    "Put no example usage, print() or input() at the top level. After the block, at most two sentences."
)
NOT_EXECUTED = ("Not executed: the Code specialist runs without its sandbox code loop (code_loop: null), "
                "so this code was written but never run or tested. Review it before use.")
FENCE = re.compile(r"```([a-zA-Z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


# What a request for code names or says: a call or definition, a source file, a code block, or a verb or noun
# of programming. A question with none of these ("What is the time complexity of merge sort?", "Which agent
# made the most LLM calls?") asks for an answer, not a program.
_NAMES_CODE = re.compile(r"\b[A-Za-z_]\w*\(|\.(?:py|ts|tsx|js|java)\b|```")
_ASKS_CODE = re.compile(r"\b(?:write|writes|implement|code|program|script|functions?|methods?|class|classes|refactor|"
                        r"debug|fix|bug|unit tests?|compile|regex|snippet)\b", re.IGNORECASE)
_QUESTION = re.compile(r"^\s*(?:what|why|how|which|when|who|where|is|are|does|do|can|could|should|explain|describe|"
                       r"compare|tell me)\b", re.IGNORECASE)


def asks_for_code(request: str) -> bool:
    """Whether a request asks for a program: it names code or a programming act, or it is not a question
    (an imperative such as "Reverse a string in TypeScript" is a request for code)."""
    if _NAMES_CODE.search(request) or _ASKS_CODE.search(request):
        return True
    return not _QUESTION.search(request)


def handle(call: SpecialistCall) -> SubtaskResult:
    return code_loop(call.options.get("code_loop"))(call)


def code_loop(ref: str | None) -> Callable[[SpecialistCall], SubtaskResult]:
    """The configured code loop, or `write_code` while there is none."""
    if not ref:
        return write_code
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"specialists.code.options.code_loop {ref!r} cannot be imported ({exc}); "
                          f"write it as package.module:function or set it to null.") from None


def write_code(call: SpecialistCall) -> SubtaskResult:
    result = call.run_loop()
    code, language = extract_code(result.output)
    data = {"code": code, "language": language, "executed": False, "note": NOT_EXECUTED}
    output = f"{result.output.rstrip()}\n\n{NOT_EXECUTED}" if result.output else ""
    return SubtaskResult.from_agent(call.subtask, result, data=data, output=output)


def extract_code(text: str) -> tuple[str, str]:
    """(code, language) from the first fenced block; the whole reply when there is no fence."""
    match = FENCE.search(text)
    if match is None:
        return text.strip(), "python"
    return match[2].strip("\n"), (match[1] or "python").lower()


SPECIALIST = Specialist(
    name="code",
    description="Writes and tests code (Python by default; TypeScript, Java) when the request asks for a program: "
                "write or fix a function, script or class. A question about a language or a concept (what X is, "
                "what X does, the difference between X and Y) is not code, even with an example.",
    handler=handle,
    system_prompt=SYSTEM_PROMPT,
    writes_tests=True,  # the sandbox code loop writes the tests first and runs them
    accepts=asks_for_code,
    keywords=("code", "function", "python", "script", "implement", "program", "class", "bug", "typescript",
              "java", "regex", "algorithm"),
    limits=Limits(max_steps=2, max_tokens=6000, max_tokens_per_call=768, timeout_s=240),
)
