"""Task understanding: the first step of a task, on its worker — kind, language, complexity, a summary.

Schema-constrained output with tight caps, so even a small model answers in one short JSON object.
"""

from __future__ import annotations

from typing import Any

KINDS = ("code", "general", "data")
LANGUAGES = ("python", "typescript", "java", "none")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "language": {"type": "string", "enum": list(LANGUAGES)},
        "complexity": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string", "maxLength": 120},
    },
    "required": ["kind", "language", "complexity", "summary"],
}
SYSTEM = (
    "Classify the user's task. kind: code (write or fix a program), data (questions about the execution "
    "log, costs, models, tasks), general (anything else). language: the programming language for code "
    "tasks, else none. complexity: 1 (trivial) to 5 (a multi-part project). summary: one short line."
)


def classify(prompt: str, model) -> dict[str, Any]:
    c = model.complete([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt[:4000]}],
                       schema=SCHEMA, max_tokens=120, temperature=0)
    data = dict(c.data or {})
    out = {
        "kind": data.get("kind") if data.get("kind") in KINDS else "general",
        "language": data.get("language") if data.get("language") in LANGUAGES else "none",
        "complexity": min(5, max(1, int(data.get("complexity") or 1))),
        "summary": str(data.get("summary") or "")[:120],
    }
    if out["language"] == "none":
        out["language"] = None
    return out
