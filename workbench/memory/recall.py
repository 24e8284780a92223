"""Memory as the agents use it: recall before planning and coding, the execution cache, and the quality gate
after. Each function is one event in the trace and never fails the task: a memory that cannot be read or
written is logged and the task goes on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench import telemetry
from workbench.events import Kind
from workbench.memory.store import Hit, MemoryStore, NewEntry, tokens_estimate

log = logging.getLogger(__name__)
ENTRY_CHARS = 1500  # one entry's code or plan in a prompt: a small model's context is shared by every input


@dataclass
class Recall:
    hits: list[Hit] = field(default_factory=list)
    prompt: str = ""
    tokens: int = 0

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]


def _memory(memory: MemoryStore | None) -> MemoryStore | None:
    if memory is not None:
        return memory
    from workbench.memory.access import get_memory

    try:
        return get_memory()
    except Exception as exc:  # noqa: BLE001 - memory is an aid: a store that cannot be opened must not fail the task
        log.warning("memory is off for this call: %s", exc)
        return None


def _event(action: str, agent: str | None, **payload: Any) -> None:
    telemetry.emit(Kind.MEMORY, agent=agent, payload={"action": action, **payload})


def recall(query: str, *, owner: str, kinds: Sequence[str], agent: str | None = None,
           memory: MemoryStore | None = None, token_budget: int | None = None, limit: int = 4,
           min_similarity: float | None = None) -> Recall:
    """Past entries like `query` for a prompt: the most similar first, whole entries within `token_budget`.
    One `memory` event per entry used (its id, similarity and why), or one saying nothing was close enough."""
    from workbench.config import get_settings

    mem = _memory(memory)
    if mem is None:
        return Recall()
    budget = get_settings().memory_tokens if token_budget is None else token_budget
    try:
        hits = mem.search(query, owner=owner, kinds=kinds, limit=limit, min_similarity=min_similarity)
    except Exception as exc:  # noqa: BLE001 - see _memory
        log.warning("memory search failed, going on without it: %s", exc)
        return Recall()
    used: list[Hit] = []
    parts: list[str] = []
    spent = 0
    for hit in hits:
        text = format_entry(len(used) + 1, hit)
        cost = tokens_estimate(text)
        if spent + cost > budget:
            _event("skip", agent, entry=hit.id, similarity=hit.similarity,
                   why=f"over the memory token budget ({spent + cost} > {budget})")
            continue
        used.append(hit)
        parts.append(text)
        spent += cost
        _event("retrieve", agent, used=hit.id, similarity=hit.similarity, entry_kind=hit.kind,
               why=f"{_label(hit)} with similarity {hit.similarity:.2f} ≥ {mem.min_similarity:.2f}, "
                   f"score {hit.score:.2f}", source_task_id=hit.source_task_id)
    if not used:
        _event("retrieve", agent, used=None, similarity=None, kinds=list(kinds),
               why=f"no {'/'.join(kinds)} entry of owner {owner!r} within the thresholds")
        return Recall()
    prompt = ("Similar past tasks from memory (use what fits this request; the request wins where they "
              "differ):\n\n" + "\n\n".join(parts))
    return Recall(used, prompt, spent)


def _label(hit: Hit) -> str:
    return {"solution": "verified solution", "failure_note": "failure note"}.get(hit.kind, hit.kind)


def format_entry(number: int, hit: Hit) -> str:
    """One entry as a model reads it. Model output from the past is data: it is fenced, never obeyed."""
    head = f"[{number}] {_label(hit)} (similarity {hit.similarity:.2f}) for: {' '.join(hit.text.split())[:400]}"
    body = hit.body
    if hit.kind == "solution":
        fence = body.get("language") or hit.language or ""
        code = "\n\n".join(f"# {name}\n{src}" for name, src in body.get("files", {}).items()
                           if name == body.get("solution_file", name))
        return f"{head}\n```{fence}\n{code[:ENTRY_CHARS].rstrip()}\n```"
    if hit.kind == "failure_note":
        return f"{head}\nWhat went wrong: {str(body.get('note', ''))[:ENTRY_CHARS]}"
    if hit.kind == "plan":
        steps = body.get("subtasks") or []
        lines = [f"- {s.get('specialist', '?')}: {' '.join(str(s.get('instructions', '')).split())[:200]}"
                 for s in steps if isinstance(s, dict)]
        return f"{head}\nPlan that worked:\n" + "\n".join(lines)[:ENTRY_CHARS]
    return f"{head}\n{str(body.get('summary', ''))[:ENTRY_CHARS]}"


def cached_solution(request: str, *, owner: str, language: str | None, agent: str | None = None,
                    memory: MemoryStore | None = None) -> Hit | None:
    """The execution cache: this owner's stored verified solution of this exact request, or None."""
    mem = _memory(memory)
    if mem is None:
        return None
    try:
        hit = mem.cached(request, owner=owner, language=language)
    except Exception as exc:  # noqa: BLE001 - see _memory
        log.warning("memory cache lookup failed, going on without it: %s", exc)
        return None
    if hit is not None:
        _event("cache_hit", agent, used=hit.id, similarity=1.0, source_task_id=hit.source_task_id,
               why=f"the same request was solved before for owner {owner!r} and its tests passed "
                   f"(score {hit.score:.2f}, used {hit.uses + 1} times)")
    return hit


def remember_code(request: str, language: str, result: Any, *, owner: str, task_id: str | None = None,
                  agent: str | None = "code", memory: MemoryStore | None = None, scope: str = "owner") -> str | None:
    """The quality gate: a code loop result (`workbench.code.loop.CodeResult`) whose tests passed
    (`result.ok`) becomes a verified solution; any other becomes a failure note. Returns the entry id."""
    mem = _memory(memory)
    if mem is None:
        return None
    summary = result.summary()
    if result.ok:
        solution_file = result.task.solution_file
        files = {solution_file: result.files[solution_file]} if solution_file in result.files else dict(result.files)
        entry = NewEntry(kind="solution", owner=owner, text=request, language=language, scope=scope,
                         source_task_id=task_id, verified=True,
                         body={"files": files, "language": language, "solution_file": solution_file,
                               "tests_passed": summary["tests_passed"], "rounds": summary["rounds"],
                               "model": summary["model"]})
    else:
        failing = sorted({test for r in result.rounds for test, _ in (r.failing or [])})[:10]
        note = (f"the code loop stopped ({result.stop_reason}) with {summary['tests_passed']}/{summary['tests_run']} "
                f"tests passing" + (f"; failing: {', '.join(failing)}" if failing else ""))
        entry = NewEntry(kind="failure_note", owner=owner, text=request, language=language, scope=scope,
                         source_task_id=task_id, body={"note": note, "stop_reason": result.stop_reason})
    return _store(mem, entry, agent)


def remember_plan(request: str, plan: dict[str, Any], *, owner: str, ok: bool, task_id: str | None = None,
                  memory: MemoryStore | None = None) -> str | None:
    """A plan whose task finished ok is remembered for the Director; one that failed is a failure note."""
    mem = _memory(memory)
    if mem is None:
        return None
    subtasks = [{"specialist": s.get("specialist"), "instructions": s.get("instructions")}
                for s in plan.get("subtasks", []) if isinstance(s, dict)]
    if ok:
        entry = NewEntry(kind="plan", owner=owner, text=request, source_task_id=task_id, verified=True,
                         body={"subtasks": subtasks})
    else:
        entry = NewEntry(kind="failure_note", owner=owner, text=request, source_task_id=task_id,
                         body={"note": f"a plan of {len(subtasks)} step(s) ({', '.join(str(s['specialist']) for s in subtasks)}) "
                                       f"did not finish", "subtasks": subtasks})
    return _store(mem, entry, "director")


def _store(mem: MemoryStore, entry: NewEntry, agent: str | None) -> str | None:
    try:
        added = mem.add(entry)
    except Exception as exc:  # noqa: BLE001 - see _memory
        log.warning("memory: could not store the %s: %s", entry.kind, exc)
        return None
    if added.merged:
        _event("merge", agent, entry=added.id, entry_kind=entry.kind, similarity=added.similarity,
               why=f"a near-duplicate (similarity {added.similarity:.2f}) of an entry the owner has: merged into it")
    else:
        _event("store", agent, entry=added.id, entry_kind=entry.kind, verified=entry.verified,
               why="tests passed: a verified solution" if entry.kind == "solution" else f"stored as {entry.kind}")
    return added.id


def settle(ids: Sequence[str], ok: bool, *, agent: str | None = None, memory: MemoryStore | None = None) -> None:
    """What the entries a task used led to: successes raise their score, failures make them decay."""
    if not ids:
        return
    mem = _memory(memory)
    if mem is None:
        return
    try:
        mem.feedback(ids, ok)
    except Exception as exc:  # noqa: BLE001 - see _memory
        log.warning("memory: could not record the outcome: %s", exc)
        return
    _event("feedback", agent, entries=list(ids), ok=ok,
           why="the task they helped passed" if ok else "the task they were used for failed: they decay")
