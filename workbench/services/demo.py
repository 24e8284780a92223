"""The seeded demo: a small REAL workload (short tasks on the local model) that fills an empty store, so a
new user's dashboards have something to show.

One plan (`plan()`) serves both ways in: `workbench demo` runs it in the foreground, and the served app runs
it in the background (`start()`, from the dashboards' offer or `POST /api/v1/demo`) with progress for the
pages to show. Every demo task's title starts with DEMO_PREFIX, stored with the task, so analyses can leave
demo data out (`WHERE title NOT LIKE 'demo: %'`). At most one background demo runs per server process:
`start()` while one runs raises DemoAlreadyRunning instead of starting a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.tasks.api import TaskApi
    from workbench.tasks.records import NewTask, Task

log = logging.getLogger(__name__)
DEMO_PREFIX = "demo: "
DEFAULT_TASKS = 6
DEFAULT_MAX_TOKENS = 160
FAILING_MODEL = "test:fail"  # a deterministic model that really fails: failure analysis gets an example
CLI_LINE = "workbench demo"

# Small tasks of the kinds the workbench sees: code in three languages, explanations, data questions.
PROMPTS = [
    ("Write a Python function is_palindrome(s) that ignores case and spaces.", None),
    ("Explain in two sentences what a Dask worker is.", None),
    ("Write a TypeScript function that returns the largest number in an array.", 0.01),
    ("Write a Python function that counts the words in a string.", None),
    ("Give three short tips for writing readable SQL.", 0.005),
    ("Write a Java method that reverses a string.", None),
    ("Summarize the difference between a list and a tuple in Python in one paragraph.", None),
    ("Write a Python function fizzbuzz(n) that returns the list of strings for 1..n.", 0.01),
    ("Which is usually cheaper to run for short prompts: a local 1.5B model or a cloud API? One paragraph.", None),
    ("Write a Python function that merges two sorted lists into one sorted list.", None),
]


class DemoAlreadyRunning(WorkbenchError):
    http_status = 409


@dataclass(frozen=True)
class DemoItem:
    """One task of the demo: its prompt, budget and model (None: the default model)."""

    prompt: str
    budget_usd: float | None = None
    model: str | None = None

    @property
    def title(self) -> str:
        return DEMO_PREFIX + self.prompt

    def new_task(self) -> NewTask:
        from workbench.tasks.records import NewTask

        return NewTask.of(prompt=self.prompt, title=self.title, model=self.model, budget_usd=self.budget_usd)


def plan(tasks: int = DEFAULT_TASKS, model: str | None = None, failures: bool = True) -> list[DemoItem]:
    """`tasks` prompts (cycled) on `model`, plus one real failing run on FAILING_MODEL when `failures`."""
    items = [DemoItem(PROMPTS[i % len(PROMPTS)][0], PROMPTS[i % len(PROMPTS)][1], model) for i in range(tasks)]
    if failures:
        items.append(DemoItem("deliberate failure on the test:fail model", None, FAILING_MODEL))
    return items


def is_demo(title: str | None) -> bool:
    return bool(title) and title.startswith(DEMO_PREFIX)


@dataclass
class DemoProgress:
    """What the pages and the API show of the background demo."""

    state: Literal["idle", "running", "finished"] = "idle"
    total: int = 0
    done: int = 0  # tasks that came to rest (completed, failed, cancelled, ...)
    completed: int = 0
    task_ids: list[str] = field(default_factory=list)
    error: str | None = None  # why the demo stopped early, if it did
    started_at: float | None = None
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def line(self) -> str:
        if self.state == "idle":
            return "The demo has not been started."
        if self.state == "running":
            return f"Demo running: {self.done}/{self.total} tasks done."
        tail = f" It stopped early: {self.error}" if self.error else ""
        return f"Demo finished: {self.done}/{self.total} tasks done, {self.completed} completed.{tail}"


class DemoRun:
    """The demo in a background thread: creates and queues each task through the task API, waits for it to
    rest, counts it. Tasks run one after another, as the CLI runs them, so the demo never fills the
    model's queue ahead of a user's own tasks."""

    def __init__(self, tasks: TaskApi, items: list[DemoItem], max_tokens: int = DEFAULT_MAX_TOKENS,
                 wait: Callable[[str], Task] | None = None):
        self.tasks = tasks
        self.items = items
        self.max_tokens = max_tokens
        self._wait = wait or (lambda task_id: tasks.wait(task_id))
        self.progress = DemoProgress(state="running", total=len(items), started_at=time.time())
        self.thread = threading.Thread(target=self._run, daemon=True, name="workbench-demo")

    def _run(self) -> None:
        from workbench.tasks.runner import RunOptions

        try:
            for item in self.items:
                task = self.tasks.create_and_submit(item.new_task(), RunOptions(max_tokens=self.max_tokens))
                self.progress.task_ids.append(task.id)
                rested = self._wait(task.id)
                self.progress.done += 1
                self.progress.completed += rested.status == "completed"
        except Exception as exc:  # the page says why; the thread must not die silently
            log.exception("the demo stopped early")
            self.progress.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.progress.finished_at = time.time()
            self.progress.state = "finished"

    @property
    def running(self) -> bool:
        return self.progress.state == "running"


_lock = threading.Lock()
_current: DemoRun | None = None


def start(tasks: TaskApi, items: list[DemoItem] | None = None, max_tokens: int = DEFAULT_MAX_TOKENS) -> DemoRun:
    """Start the demo in the background on this process's task API; DemoAlreadyRunning while one runs."""
    global _current
    if not tasks.runs_tasks:
        raise WorkbenchError("This process runs no tasks, so it cannot run the demo in the background: run "
                             f"`{CLI_LINE}` instead, or start `workbench serve` and press its demo button.")
    with _lock:  # check and start as one step: two clicks at once start one demo
        if _current is not None and _current.running:
            raise DemoAlreadyRunning(f"A demo is already running ({_current.progress.done}/"
                                     f"{_current.progress.total} tasks done); GET /api/v1/demo shows its progress.")
        _current = DemoRun(tasks, items if items is not None else plan(), max_tokens)
        _current.thread.start()
        return _current


def progress() -> DemoProgress:
    """The background demo's progress in this process (state "idle" when none was started)."""
    run = _current
    return DemoProgress() if run is None else run.progress


def reset() -> None:
    """Forget the finished demo (tests); a running one is left to finish."""
    global _current
    with _lock:
        if _current is not None and not _current.running:
            _current = None
