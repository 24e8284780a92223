"""The JSON action format of the agent loop, and reading it back from whatever a model printed.

Models with native tool calls are not assumed. An agent with tools is asked for one JSON object,
`{"thought": "...", "tool": "<name>", "arguments": {...}}`, constrained by a JSON schema where the
model supports it; `final_answer` is a tool like any other (smolagents). Small models still print calls
as text, so `parse_action` also reads a ```json fenced block, a JSON object inside prose, other common
key spellings ({"name", "args"}, OpenAI's {"function": {...}}) and Python call syntax `read_file("a.txt")`.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from workbench.tools import Tool

FINAL = "final_answer"
FINAL_PARAMETERS = {
    "type": "object",
    "properties": {"answer": {"type": "string", "description": "The complete answer to the task."}},
    "required": ["answer"],
    "additionalProperties": False,
}
THOUGHT_MAX_CHARS = 200
TOOL_KEYS = ("tool", "tool_name", "name", "action", "function")
ARG_KEYS = ("arguments", "args", "parameters", "action_input", "tool_input", "input")
FENCED = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)

Action = dict[str, Any]  # {"tool": str, "arguments": dict, "thought": str}


def action_schema(tools: list[Tool]) -> dict[str, Any]:
    """One object per tool (its own argument schema) plus final_answer: the grammar allows nothing else."""

    def option(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": THOUGHT_MAX_CHARS},
                "tool": {"type": "string", "enum": [name]},
                "arguments": parameters,
            },
            "required": ["thought", "tool", "arguments"],
        }

    return {"anyOf": [option(t.name, t.parameters) for t in tools] + [option(FINAL, FINAL_PARAMETERS)]}


def tools_prompt(tools: list[Tool]) -> str:
    lines = ["You can use these tools:"]
    for t in tools:
        lines.append(f"- {t.signature()}: {t.description.splitlines()[0]}")
        lines += [f"    {name}: {p.get('description', '')}" for name, p in t.parameters["properties"].items()]
    lines.append(f"- {FINAL}(answer: string): Give the final answer and stop.")
    lines.append(
        'Reply with exactly one JSON object and nothing else: {"thought": "<one short sentence>", '
        '"tool": "<tool name>", "arguments": {...}}. You will see the tool\'s result, then choose the next '
        f'action. When you know the answer, use the tool "{FINAL}".'
    )
    return "\n".join(lines)


def correction(problem: str, tools: list[Tool]) -> str:
    if not tools:  # a plain-text agent: any non-empty answer will do
        return f"Your last reply could not be used: {problem}. Answer the task directly, in plain text."
    names = ", ".join([t.name for t in tools] + [FINAL])
    return (f"Your last reply could not be used: {problem}. Reply with exactly one JSON object, for example "
            f'{{"thought": "...", "tool": "{FINAL}", "arguments": {{"answer": "..."}}}}. Tools: {names}.')


def parse_action(text: str, tool_names: list[str]) -> tuple[Action, str] | None:
    """(action, how it was found) or None. `how`: json, fenced_json, embedded_json, call_syntax."""
    stripped = text.strip()
    candidates: list[tuple[Any, str]] = [(_loads(stripped), "json")]
    candidates += [(_loads(block.strip()), "fenced_json") for block in FENCED.findall(stripped)]
    candidates += [(obj, "embedded_json") for obj in _embedded_objects(stripped)]
    for obj, how in candidates:
        action = normalize(obj)
        if action is not None:
            return action, how
    call = _call_syntax(stripped, tool_names + [FINAL])
    return (call, "call_syntax") if call is not None else None


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply: the whole text, a fenced block, or one embedded in prose."""
    stripped = text.strip()
    candidates = [_loads(stripped)] + [_loads(b.strip()) for b in FENCED.findall(stripped)]
    return next((c for c in candidates + _embedded_objects(stripped) if isinstance(c, dict)), None)


def normalize(obj: Any) -> Action | None:
    """The canonical {"tool", "arguments", "thought"} from the key spellings models use."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI style {"function": {"name", "arguments"}}
        obj = {**obj, **obj["function"]}
    tool = next((obj[k] for k in TOOL_KEYS if isinstance(obj.get(k), str)), None)
    if tool is None:
        answer = obj.get(FINAL, obj.get("answer"))
        return {"tool": FINAL, "arguments": {"answer": answer}, "thought": ""} if answer is not None else None
    args_key = next((k for k in ARG_KEYS if k in obj), None)
    if args_key is not None:
        args = obj[args_key]
        if isinstance(args, str) and tool != FINAL:
            args = _loads(args) if _loads(args) is not None else args
    else:  # flat style: {"tool": "read_file", "path": "a.txt"}
        args = {k: v for k, v in obj.items() if k not in {*TOOL_KEYS, "thought", "reasoning"}}
    if tool == FINAL:
        args = {"answer": final_text(args)}
    return {"tool": tool, "arguments": args, "thought": str(obj.get("thought", ""))}


def final_text(args: Any) -> str:
    """The answer of a final_answer call, whatever shape the model gave it."""
    if isinstance(args, dict):
        value = args.get("answer", next(iter(args.values()), "") if len(args) == 1 else args)
    else:
        value = args
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None


def _embedded_objects(text: str) -> list[Any]:
    decoder, out = json.JSONDecoder(), []
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        out.append(obj)
    return out


def _call_syntax(text: str, names: list[str]) -> Action | None:
    """`tool_name(arg, key=value)` printed as text; arguments must be Python literals."""
    pattern = re.compile(rf"\b({'|'.join(map(re.escape, names))})\s*\(")
    for match in pattern.finditer(text):
        end = text.find(")", match.end())
        while end != -1:
            try:
                call = ast.parse(text[match.start():end + 1], mode="eval").body
            except SyntaxError:
                end = text.find(")", end + 1)
                continue
            if isinstance(call, ast.Call):
                try:
                    positional = [ast.literal_eval(a) for a in call.args]
                    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
                except ValueError:
                    break
                return {"tool": match[1], "arguments": keywords, "positional": positional, "thought": ""}
            break
    return None


def bind_positional(action: Action, tools: dict[str, Tool]) -> Action:
    """Map `read_file("a.txt")` positional arguments onto the tool's parameter names, in order."""
    positional = action.pop("positional", [])
    if not positional:
        return action
    order = list(tools[action["tool"]].parameters["properties"]) if action["tool"] in tools else ["answer"]
    action["arguments"] = {**dict(zip(order, positional)), **action["arguments"]}
    if action["tool"] == FINAL:
        action["arguments"] = {"answer": final_text(action["arguments"])}
    return action
