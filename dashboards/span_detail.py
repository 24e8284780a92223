"""One span of a task's trace, opened: everything its event recorded (prompt and messages, reply, tool
arguments and result, sandbox command, stdout and stderr, the rest of the payload) as plain text.

Model output and tool output are data: every value is HTML-escaped into a `<pre>` block, never rendered as
HTML or Markdown, so `<script>` or `[bold]` in a prompt shows as those characters. Secrets were redacted by
the store when the event was written; this view only shows what the store holds, so nothing is un-redacted.
Long values are cut at `limit` characters for display; "Show all" shows them whole.

Which payload keys make which section is a registry by event kind (SECTIONS); keys no section takes are
shown under "other fields", so nothing recorded is hidden.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
import param

from dashboards.layout import money

DISPLAY_CHARS = 2000


@dataclass(frozen=True)
class Section:
    title: str
    text: str


def as_text(value: Any) -> str:
    """A payload value as text: strings as they are, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=isinstance(value, dict))


def _messages(payload: dict) -> list[Section]:
    messages = payload.pop("messages", None)
    if messages is None:
        return []
    if not isinstance(messages, list):
        return [Section("prompt", as_text(messages))]
    parts = []
    for m in messages:
        if isinstance(m, dict):
            parts.append(f"[{m.get('role', '?')}]\n{as_text(m.get('content', ''))}")
            extra = {k: v for k, v in m.items() if k not in ("role", "content")}
            if extra:
                parts.append(as_text(extra))
        else:
            parts.append(as_text(m))
    return [Section(f"prompt ({len(messages)} message(s))", "\n\n".join(parts))]


def _take(payload: dict, title: str, *keys: str) -> list[Section]:
    """One section from the first of `keys` with a value (others stay for "other fields"); empty ones go."""
    for key in keys:
        if key in payload and payload[key] in (None, "", [], {}):
            del payload[key]
    key = next((k for k in keys if k in payload), None)
    return [] if key is None else [Section(title, as_text(payload.pop(key)))]


def _llm_call(payload: dict) -> list[Section]:
    return [*_messages(payload), *_take(payload, "reply", "response", "text"),
            *_take(payload, "options", "options")]


def _tool_call(payload: dict) -> list[Section]:
    return [*_take(payload, "tool", "tool"), *_take(payload, "arguments", "arguments", "args"),
            *_take(payload, "result", "result", "output")]


def _sandbox_run(payload: dict) -> list[Section]:
    command = payload.pop("command", None)
    shown = [Section("command", " ".join(map(str, command)) if isinstance(command, list) else as_text(command))
             ] if command else []
    return [*shown, *_take(payload, "code", "code"), *_take(payload, "stdout", "stdout", "stdout_tail", "output"),
            *_take(payload, "stderr", "stderr", "stderr_tail", "logs")]


def _message(payload: dict) -> list[Section]:
    return _take(payload, "text", "text", "content")


def _agent_step(payload: dict) -> list[Section]:
    return [*_messages(payload), *_take(payload, "input", "input", "instructions", "task"),
            *_take(payload, "output", "output", "answer", "response")]


SECTIONS: dict[str, Callable[[dict], list[Section]]] = {
    "llm_call": _llm_call, "llm_attempt": _llm_call, "tool_call": _tool_call, "sandbox_run": _sandbox_run,
    "message": _message, "agent_step": _agent_step,
}


def sections(event: dict[str, Any]) -> list[Section]:
    """What the event recorded, as titled text sections (its error first)."""
    payload = dict(event.get("payload") or {}) if isinstance(event.get("payload"), dict) else {
        "payload": event.get("payload")}
    out = [Section("error", str(event["error"]))] if event.get("error") else []
    out += SECTIONS.get(event.get("kind", ""), lambda p: [])(payload)
    if payload:
        out.append(Section("other fields", as_text(payload)))
    return out


def headline(event: dict[str, Any]) -> str:
    """One line naming the span: kind, agent, model, sequence number, duration, tokens and cost."""
    parts = [str(event.get("kind") or "?")]
    parts += [str(event[k]) for k in ("agent", "model") if event.get(k)]
    parts.append(f"#{event.get('seq')}")
    if event.get("duration_ms") is not None:
        parts.append(f"{float(event['duration_ms']):,.1f} ms")
    if event.get("tokens_in") is not None or event.get("tokens_out") is not None:
        parts.append(f"{event.get('tokens_in') or 0:,} → {event.get('tokens_out') or 0:,} tokens")
    if event.get("cost_usd") is not None:
        parts.append(money(event["cost_usd"]))
    if event.get("span_id"):
        parts.append(f"span {event['span_id']}")
    return " · ".join(parts)


def render(event: dict[str, Any], limit: int | None) -> tuple[str, bool]:
    """(HTML of the span's sections, whether any was cut). Every value is escaped: it shows as text."""
    cut = False
    blocks = [f"<div style='font-weight:600;margin:4px 0'>{html.escape(headline(event))}</div>"]
    for s in sections(event):
        text = s.text
        if limit is not None and len(text) > limit:
            text = text[:limit] + f"\n… {len(s.text) - limit:,} more characters (press “Show all”)"
            cut = True
        blocks.append(
            f"<div class='span-section'><div style='color:#555;font-size:0.9em'>{html.escape(s.title)}"
            f" ({len(s.text):,} characters)</div><pre style='white-space:pre-wrap;word-break:break-word;margin:2px 0 8px;"
            f"padding:6px;background:#f6f8fa;border-radius:4px;max-height:480px;overflow:auto'>{html.escape(text)}</pre></div>")
    return "".join(blocks), cut


class SpanDetail(pn.viewable.Viewer):
    """The opened span: its headline and sections as text, cut long with a "Show all" toggle."""

    show_all = param.Boolean(default=False, doc="Show every value whole instead of its first characters")

    def __init__(self, limit: int = DISPLAY_CHARS, **params):
        super().__init__(**params)
        self.limit = limit
        self.event: dict[str, Any] | None = None
        self.title = pn.pane.Markdown("#### Span", margin=(0, 5))
        self.body = pn.pane.HTML("<i>Click a span in the events table or in the waterfall to see its input and "
                                 "output.</i>", sizing_mode="stretch_width", css_classes=["span-detail"])
        self.toggle = pn.widgets.Toggle.from_param(self.param.show_all, name="Show all", width=110, visible=False)

    def show(self, event: dict[str, Any] | None) -> None:
        if event is not None and (self.event is None or event.get("seq") != self.event.get("seq")):
            self.show_all = False  # a new span opens cut again
        self.event = event
        self._render()

    @param.depends("show_all", watch=True)
    def _render(self) -> None:
        if self.event is None:
            self.toggle.visible = False
            return
        self.body.object, cut = render(self.event, None if self.show_all else self.limit)
        self.toggle.visible = cut or self.show_all
        self.title.object = f"#### Span #{self.event.get('seq')}"

    def __panel__(self):
        return pn.Column(pn.Row(self.title, self.toggle), self.body, sizing_mode="stretch_width",
                         styles={"border": "1px solid #e3e3e3", "border-radius": "6px"}, margin=(6, 6))
