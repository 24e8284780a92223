"""Text that users and models wrote reaches the dashboards' Markdown panes as text: raw HTML in a prompt,
title, answer, plan, model reply or error is shown escaped, never rendered (so never run)."""

from __future__ import annotations

import html

import panel as pn
import pytest

import dashboards  # noqa: F401  (the package sets the pages' Markdown policy)
from dashboards.tasks import TasksPage

PAYLOADS = ['<img src=x onerror="document.title=1">', "<script>document.title=2</script>",
            '<a href="javascript:alert(1)">x</a>', "<iframe src=//evil.example></iframe>"]


def rendered(pane) -> str:
    """The HTML the browser gets for the pane (Panel escapes it once more for the transport)."""
    return html.unescape(pane._transform_object(pane.object)["object"])


def assert_text_only(markup: str) -> None:
    for tag in ("<img", "<script", "<iframe", 'href="javascript:'):
        assert tag not in markup.lower(), markup
    assert "&lt;" in markup  # the characters are there, as text


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("kind", [pn.pane.Markdown, pn.pane.Alert])
def test_markdown_panes_show_raw_html_as_text(kind, payload):
    assert_text_only(rendered(kind(f"#### Final answer\n{payload}\n\n**still markdown**")))
    assert "<strong>still markdown</strong>" in rendered(kind("**still markdown**"))


def test_chat_messages_show_raw_html_as_text():
    message = pn.chat.ChatMessage(PAYLOADS[0], user="model")
    assert_text_only(rendered(message._object_panel))


def test_task_detail_sections_show_raw_html_as_text():
    payload = " ".join(PAYLOADS)
    plan = {"reasoning": payload, "subtasks": [{"id": "s1", "specialist": "coder", "instructions": payload}]}
    result = {"plan": plan, "subtasks": {"s1": {"status": "completed", "data": {"code": payload, "note": payload}}}}
    events = [{"seq": 1, "kind": "llm_call", "agent": "director", "model": payload,
               "payload": {"messages": [{"role": "user", "content": payload}], "response": payload}},
              {"seq": 2, "kind": "message", "agent": payload, "payload": {"text": payload}}]
    for text in (TasksPage._plan_markdown(result), TasksPage._code_markdown(result, events),
                 TasksPage._messages_markdown(events)):
        assert_text_only(rendered(pn.pane.Markdown(text)))
