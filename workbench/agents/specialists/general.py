"""General: answers questions and writes text, through the standard agent loop (tools from agents.yaml).

With its browser capability (options.browser, and the `network` permission) it also answers questions about
a local web page: each http(s) URL in the subtask is opened in the headless browser and photographed before
the loop runs, and the page's text (never its HTML) is given to the model as context. The screenshot's path
is in the trace twice: the browser_screenshot tool_call event, and the subtask's data (`screenshots`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.agents.agent import Limits
from workbench.agents.specialist import Specialist, SpecialistCall, SubtaskResult
from workbench.tools import Toolset
from workbench.tools.browser import browser_open, browser_screenshot

SYSTEM_PROMPT = (
    "You are the General specialist. Answer the question or write the requested text, concisely and "
    "accurately. When results of earlier subtasks are given, build on them and cite them by their [id]. "
    "If something cannot be known from what you were given, say so instead of guessing."
)
URL = re.compile(r"https?://[^\s<>\"'`)\]}]+")
MAX_PAGES = 2  # pages opened for one subtask
PAGE_CONTEXT_CHARS = 1500  # of each page's text: a small model's context is shared by every input


def handle(call: SpecialistCall) -> SubtaskResult:
    data: dict[str, Any] = {}
    if call.options.get("browser"):
        data = _visit_pages(call)
    return SubtaskResult.from_agent(call.subtask, call.run_loop(), data=data)


def page_urls(text: str) -> list[str]:
    """The distinct http(s) URLs in a text, in order, without the sentence's closing punctuation."""
    urls = [u.rstrip(".,;:!?") for u in URL.findall(text)]
    return list(dict.fromkeys(urls))[:MAX_PAGES]


def _visit_pages(call: SpecialistCall) -> dict[str, Any]:
    """Open and photograph each page the subtask names; its text joins the loop's context. A refused or failed
    page is said as such in the context (the model must not guess what it holds)."""
    urls = page_urls(call.subtask.instructions)
    if not urls:
        return {}
    toolset = Toolset([browser_open, browser_screenshot], permissions=call.agent.permissions, agent=call.agent.name)
    pages, shots = [], []
    for url in urls:
        opened = toolset.call("browser_open", {"url": url})
        if opened.error:
            call.context[f"page {url}"] = f"(the page could not be read: {opened.error})"
            pages.append({"url": url, "error": opened.error})
            continue
        page = json.loads(opened.result or "{}")
        shot = toolset.call("browser_screenshot", {})
        path = json.loads(shot.result)["path"] if shot.error is None else None
        text = page.get("text") or ""
        call.context[f"page {page.get('url', url)}"] = (f"Title: {page.get('title', '')}\n"
                                                        f"{text[:PAGE_CONTEXT_CHARS]}")
        pages.append({"url": page.get("url", url), "title": page.get("title"), "screenshot": path})
        if path:
            shots.append(path)
    return {"pages": pages, "screenshots": shots}


SPECIALIST = Specialist(
    name="general",
    description="Answers questions and writes text: explanations (programming concepts and language features "
                "included, with a short example if asked), facts, summaries, emails; when no other specialist fits.",
    handler=handle,
    system_prompt=SYSTEM_PROMPT,
    keywords=("explain", "describe", "summarize", "summarise", "write", "essay", "email", "why", "what is",
              "page", "localhost", "http://"),
    limits=Limits(max_steps=4, max_tokens=6000, max_tokens_per_call=512, timeout_s=180),
    options={"browser": False},
)
