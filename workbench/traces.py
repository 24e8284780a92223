"""The span tree of one task, rebuilt from its events: what `workbench trace ID` prints and exports.

    events = traces.load(task_id)          # every event of the task, in seq order (the store, paginated)
    tree = traces.build_tree(events)       # [Node]: each event with its children, ordered by start time
    print(traces.render(tree))             # box-drawn text; traces.as_json(tree) for machines
    traces.totals(events)                  # llm calls, tokens in/out, cost, errors, wall time

A span writes its event when it ENDS, so a node's start is `ts - duration_ms` and its end is `ts`; point
events (no duration) are instants. An event hangs under the event whose span_id is its parent_span_id;
one whose parent is missing (or not in this task) is shown at the root, as are status events (no parent).
An llm_call is a span (the gateway's LoggedModel), so its llm_attempt events hang under it. The
dashboards' waterfall draws this same tree.

Totals convention: tokens and cost are summed over `llm_call` events ONLY. agent_step, subtask and agent
events carry copies of their calls' usage (in columns or payload) and llm_attempt events repeat it per
attempt, so summing every row would count the same tokens two or three times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ERROR_CHARS = 120  # an error is one line of the tree; the full text is in --json


@dataclass
class Node:
    """One event in the tree. start/end are epoch seconds (end = the event's ts)."""

    event: dict[str, Any]
    children: list[Node] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    @property
    def kind(self) -> str:
        return self.event["kind"]

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000

    def walk(self) -> Iterable[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


# --- loading --------------------------------------------------------------------------------------


def fetch_all(page: Callable[[int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every event, page by page: `page(after_seq)` returns the next rows in seq order, [] at the end.

    The store and the API both cap one answer (10,000 rows), and a long task can log more than that.
    """
    rows: list[dict[str, Any]] = []
    while batch := page(rows[-1]["seq"] if rows else 0):
        if rows and batch[-1]["seq"] <= rows[-1]["seq"]:  # a source that ignores `after` would loop forever
            break
        rows.extend(batch)
    return rows


def load(task_id: str, store: Any = None) -> list[dict[str, Any]]:
    """Every event of a task (trace id = task id), in seq order. Unknown or malformed id: TaskNotFound.

    Events may exist for an id that has no task row (calls logged with task_context outside a task),
    so the task row is only asked for when there are no events.
    """
    from workbench.store import open_store
    from workbench.tasks.service import TaskService

    service = TaskService(store if store is not None else open_store())
    events = fetch_all(lambda after: service.events(task_id, after))
    if not events:
        service.get(task_id)  # raises TaskNotFound for an unknown id; a known task may have no events yet
    return events


# --- the tree -------------------------------------------------------------------------------------


def epoch(ts: Any) -> float:
    """An event's ts (ISO string from the store/API, datetime, or epoch seconds) as epoch seconds."""
    if isinstance(ts, (int, float)):
        return float(ts)
    when = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _node(event: dict[str, Any]) -> Node:
    end = epoch(event["ts"])
    return Node(event, start=end - (event.get("duration_ms") or 0) / 1000, end=end)


def build_tree(events: Iterable[dict[str, Any]]) -> list[Node]:
    """Roots of the span tree; every event appears exactly once; children ordered by start time."""
    nodes = [_node(e) for e in sorted(events, key=lambda e: e.get("seq") or 0)]
    by_span: dict[str, Node] = {}
    for node in nodes:
        if node.event.get("span_id"):
            by_span.setdefault(node.event["span_id"], node)  # a duplicated span id: the first one owns it
    parent_of: dict[int, Node] = {}
    roots: list[Node] = []
    for node in nodes:
        parent = by_span.get(node.event.get("parent_span_id") or "")
        if parent is None or _reaches(parent, node, parent_of):  # orphan, or a link that would make a cycle
            roots.append(node)
        else:
            parent_of[id(node)] = parent
            parent.children.append(node)
    for node in nodes:
        node.children.sort(key=_order)
    return sorted(roots, key=_order)


def _reaches(start: Node, target: Node, parent_of: dict[int, Node]) -> bool:
    """Whether `target` is `start` or one of its ancestors (bad data must not hang the tree)."""
    node: Node | None = start
    while node is not None:
        if node is target:
            return True
        node = parent_of.get(id(node))
    return False


def _order(node: Node) -> tuple[float, int]:
    return node.start, node.event.get("seq") or 0


def flatten(tree: Iterable[Node]) -> list[dict[str, Any]]:
    return [n.event for root in tree for n in root.walk()]


# --- numbers --------------------------------------------------------------------------------------


def totals(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """LLM calls, tokens and cost summed over llm_call events only (see the module docstring);
    unpriced_calls: completed calls without a cost; errors: every event that recorded one (a failure
    shows at each layer it passed through); wall_ms: from the earliest start to the latest end."""
    events = list(events)
    calls = [e for e in events if e["kind"] == "llm_call"]
    nodes = [_node(e) for e in events]
    return {
        "events": len(events),
        "llm_calls": len(calls),
        "tokens_in": sum(e.get("tokens_in") or 0 for e in calls),
        "tokens_out": sum(e.get("tokens_out") or 0 for e in calls),
        "cost_usd": sum(e.get("cost_usd") or 0.0 for e in calls),
        # a call that failed has no price to miss; a completed one without a cost is unpriced
        "unpriced_calls": sum(1 for e in calls if e.get("cost_usd") is None and not e.get("error")),
        "errors": sum(1 for e in events if e.get("error")),
        "wall_ms": (max(n.end for n in nodes) - min(n.start for n in nodes)) * 1000 if nodes else 0.0,
    }


# --- output ---------------------------------------------------------------------------------------


def _sandbox_label(p: dict[str, Any]) -> str:
    return " ".join(x for x in (p.get("language"), p.get("exit_code") is not None and f"exit {p['exit_code']}") if x)


def _memory_label(p: dict[str, Any]) -> str:
    """What memory did and with which entry: "retrieve 1f2e3d4c similarity 0.83", "cache_hit 1f2e3d4c";
    a strategy choice: "strategy max_rounds=2" ("explored" when it was a try)."""
    if p.get("action") == "strategy":
        return f"strategy {p.get('setting')}={p.get('chose')}" + (" explored" if p.get("explored") else "")
    entry = p.get("used") or p.get("entry")
    similarity = p.get("similarity")
    parts = [p.get("action"), entry[:8] if isinstance(entry, str) else "nothing" if p.get("action") == "retrieve"
             else None, f"similarity {similarity:.2f}" if isinstance(similarity, (int, float)) else None]
    return " ".join(x for x in parts if x)


# The one detail that tells events of a kind apart; never content (prompts, code, results).
LABELS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tool_call": lambda p: p.get("tool"),
    "status": lambda p: f"{p.get('from') or '∅'} → {p.get('to')}",
    "llm_attempt": lambda p: p.get("outcome"),
    "sandbox_run": _sandbox_label,
    "memory": _memory_label,
    "plan": lambda p: f"fast path → {p.get('specialist')}" if p.get("fast_path") else None,
    # the code loop's rounds: what kind of answer, and why it was asked for
    "agent_step": lambda p: f"{p.get('kind')}: {p.get('decision')}" if p.get("loop") == "code" else None,
    "llm_call": lambda p: f"{p['cache_read_tokens']} prompt tokens reused" if p.get("cache_read_tokens") else None,
}


def _label(event: dict[str, Any]) -> str | None:
    payload, label = event.get("payload"), LABELS.get(event["kind"])
    value = label(payload) if label is not None and isinstance(payload, dict) else None
    return str(value) if value else None


def line(node: Node) -> str:
    e = node.event
    parts = [e["kind"], _label(e), e.get("agent"), e.get("model")]
    if e.get("duration_ms") is not None:
        parts.append(f"{e['duration_ms']:.1f} ms")
    if e.get("tokens_in") is not None or e.get("tokens_out") is not None:
        parts.append(f"{e.get('tokens_in') or 0}→{e.get('tokens_out') or 0} tok")
    if e.get("cost_usd") is not None:
        parts.append(f"${e['cost_usd']:.6f}")
    text = " · ".join(str(p) for p in parts if p)
    if e.get("error"):
        error = " ".join(str(e["error"]).split())
        text += f"  ✗ {error[:ERROR_CHARS]}{'…' if len(error) > ERROR_CHARS else ''}"
    return text


def render(tree: list[Node]) -> str:
    """The tree as box-drawn text, then one totals line (tokens and cost from llm_call events only)."""
    out: list[str] = []

    def draw(node: Node, prefix: str, last: bool) -> None:
        out.append(f"{prefix}{'└── ' if last else '├── '}{line(node)}")
        for i, child in enumerate(node.children):
            draw(child, prefix + ("    " if last else "│   "), i == len(node.children) - 1)

    events = flatten(tree)
    task = next((e.get("task_id") or e.get("trace_id") for e in events if e.get("task_id") or e.get("trace_id")), "?")
    out.append(f"trace {task}")
    for i, root in enumerate(tree):
        draw(root, "", i == len(tree) - 1)
    t = totals(events)
    unpriced = f" ({t['unpriced_calls']} unpriced)" if t["unpriced_calls"] else ""
    out.append(f"{_n(t['events'], 'event')} · {_n(t['llm_calls'], 'LLM call')} · {t['tokens_in']}→{t['tokens_out']} tok "
               f"· ${t['cost_usd']:.6f}{unpriced} · {_n(t['errors'], 'error')} · {t['wall_ms']:.1f} ms wall")
    return "\n".join(out)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def as_json(tree: list[Node]) -> list[dict[str, Any]]:
    """Nested dicts: every event's columns plus start, end (ISO, UTC) and children."""
    return [{**n.event, "start": _iso(n.start), "end": _iso(n.end), "children": as_json(n.children)} for n in tree]
