"""Chat page: Panel ChatInterface with streaming tokens, a model selector and usage/cost per reply."""

from __future__ import annotations

import asyncio
import threading

import panel as pn
import param

import workbench
from workbench import providers
from workbench.errors import WorkbenchError

from dashboards.pages import page

_DONE = object()


def usable_models() -> list[str]:
    names = [i.name for i in providers.list_models() if i.usable and not i.name.endswith(":*")]
    default = providers.resolve(None)
    return [default] + [n for n in names if n != default]


class ChatPage(pn.viewable.Viewer):
    model = param.Selector(default=None, objects=[], doc="Model that answers")

    def __init__(self, **params):
        models = usable_models()
        self.param.model.objects = models
        params.setdefault("model", models[0])
        super().__init__(**params)
        self.history: list[dict[str, str]] = []
        self.selector = pn.widgets.Select.from_param(self.param.model, name="Model", width=320)
        self.chat = pn.chat.ChatInterface(
            callback=self.respond, user="You", avatar="Y", callback_user="Assistant", callback_avatar="A",
            show_rerun=False, show_undo=False,
            widgets=[pn.chat.ChatAreaInput(placeholder="Ask the model… (Enter to send)")],
            sizing_mode="stretch_both", min_height=500,
        )
        self.status = pn.pane.Markdown("", styles={"color": "#666"})

    def stream_reply(self, prompt: str):
        """Blocking generator of (accumulated text, completion-or-None); run off the event loop."""
        model = workbench.get_model(self.model)
        self.history.append({"role": "user", "content": prompt})
        stream = model.stream(self.history)
        text = ""
        for delta in stream:
            text += delta
            yield text, None
        self.history.append({"role": "assistant", "content": text})
        yield text, stream.completion

    async def respond(self, contents: str, user: str, instance: pn.chat.ChatInterface):
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def produce():
            try:
                for item in self.stream_reply(contents):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except WorkbenchError as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        threading.Thread(target=produce, daemon=True).start()
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, WorkbenchError):
                self.status.object = f"**error:** {item}"
                yield f"⚠️ {item}"
                return
            text, completion = item
            if completion is not None:
                cost = f"${completion.cost_usd:.6f}" if completion.cost_usd is not None else "unpriced"
                self.status.object = (
                    f"{completion.model} · {completion.usage.input_tokens}→{completion.usage.output_tokens} tokens"
                    f" · {cost} · {completion.duration_ms / 1000:.1f} s"
                )
            yield text

    @param.depends("model", watch=True)
    def _model_changed(self) -> None:
        self.status.object = f"model: {self.model}"

    def __panel__(self):
        from dashboards.layout import nav

        return pn.Column(
            nav("/chat"),
            pn.Row(pn.pane.Markdown("## workbench · chat"), pn.HSpacer(), self.selector),
            self.chat, self.status, sizing_mode="stretch_both",
        )


@page("/chat", "Chat")
def chat_page():
    return ChatPage()
