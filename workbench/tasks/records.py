"""The typed shapes of a task that cross layers: the request every caller makes (`NewTask`) and what
they get back (`Task`, `TaskPage`).

`NewTask` is checked once, when it is made: its fields' types and ranges (pydantic, which is also what the
REST API documents and answers 422 with), then what a range cannot say (a blank or oversized prompt, NUL
bytes, a plan to approve without the Director). The checks that are not a range raise WorkbenchErrors, which
pydantic lets through unchanged, so the API answers them with their own status (413 for a prompt too large)
and the CLI and the dashboards show their own message. Whether the request's model exists is checked where
the task is created (`service.check_model`): that is the process whose providers will run it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError, model_validator

from workbench.errors import WorkbenchError, field_errors
from workbench.tasks.states import Status
from workbench.visible import has_visible

MAX_PROMPT_BYTES = 1_000_000
MAX_TITLE_CHARS = 500
Mode = Literal["agents", "single"]  # agents: the Director plans, specialists run the steps; single: one model call


class InvalidTask(WorkbenchError):
    http_status = 422


class PromptTooLarge(WorkbenchError):
    http_status = 413


class NewTask(BaseModel):
    """A request for a task, as the REST API, the CLI and the dashboards make it. Numbers must be finite
    (Infinity, NaN and 1e400 are refused, never stored as "unlimited"); booleans must be JSON booleans."""

    model_config = ConfigDict(allow_inf_nan=False)

    prompt: str = Field(..., description=f"What to do (at most {MAX_PROMPT_BYTES:,} bytes of UTF-8; a blank "
                                         f"prompt is refused with 422).")
    title: str = Field("", max_length=MAX_TITLE_CHARS)
    model: str | None = Field(None, description="provider:model or alias (GET /v1/models lists them; an unknown "
                                                "name is refused with 422); the default model when omitted.")
    priority: int = Field(0, ge=-1000, le=1000)
    budget_usd: float | None = Field(None, ge=0)
    approve_plan: StrictBool = Field(False, description="Stop in awaiting_approval after planning (mode agents).")
    mode: Mode = Field(
        "agents", description="agents: the Director plans and specialists run the steps; single: one model call.")
    memory: StrictBool | None = Field(
        None, description="Use memory (past verified solutions, plans, failure notes and the execution cache) for "
                          "this task: true or false; the server's WORKBENCH_MEMORY setting when omitted.")
    # Whose memory the task reads and writes. Never part of the request: the caller that authenticated it
    # sets it (`owned_by`), so a request cannot read another owner's memory by naming it.
    _owner: str | None = PrivateAttr(None)

    def owned_by(self, owner: str | None) -> NewTask:
        """This request on behalf of `owner` (None: WORKBENCH_MEMORY_OWNER when the task is created)."""
        if owner is not None and not has_visible(owner):
            raise InvalidTask("The memory owner is blank: name who the task runs for.")
        copy = self.model_copy()
        copy._owner = owner
        return copy

    @property
    def owner(self) -> str | None:
        return self._owner

    @model_validator(mode="after")
    def _storable(self) -> NewTask:
        if not has_visible(self.prompt):
            raise InvalidTask("The prompt is empty (blank, or only invisible characters such as zero-width "
                              "spaces): describe the task in a few words.")
        if self.model is not None and not has_visible(self.model):
            raise InvalidTask("The model is blank: name one (GET /v1/models or `workbench models` lists them), "
                              "or leave the field out for the default model.")
        size = len(self.prompt.encode("utf-8", "surrogatepass"))
        if size > MAX_PROMPT_BYTES:
            raise PromptTooLarge(f"The prompt is {size:,} bytes; the limit is {MAX_PROMPT_BYTES:,}. "
                                 f"Put large inputs in a file and refer to it, or shorten the prompt.")
        for name, value in (("prompt", self.prompt), ("title", self.title)):
            if "\x00" in value:
                raise InvalidTask(f"The {name} contains NUL bytes (\\x00), which cannot be stored. Remove them.")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidTask(f"The {name} is not valid UTF-8 (lone surrogates). Re-encode it as UTF-8.") from None
        if self.approve_plan and self.mode != "agents":
            raise InvalidTask("approve_plan needs mode 'agents': only the Director makes a plan to approve.")
        return self

    @classmethod
    def of(cls, **fields: Any) -> NewTask:
        """The request from a caller that is not FastAPI (the CLI, a dashboard form): a field out of range is
        an InvalidTask with one line naming it, not pydantic's multi-line report."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InvalidTask(f"Invalid task — {field_errors(exc.errors())}.") from None


class Task(BaseModel):
    """A task as every caller sees it: its row, its run settings and its plan."""

    id: str
    title: str
    prompt: str
    status: Status
    priority: int
    kind: str | None = None
    language: str | None = None
    complexity: int | None = None
    summary: str | None = None
    model: str | None = None
    budget_usd: float | None = None
    parent_id: str | None = None
    result: Any = None
    error: str | None = None
    attempts: int = 0
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str
    mode: Mode = "agents"
    approve_plan: bool = False
    plan: Any = None
    plan_state: Literal["none", "proposed", "approved"] = "none"
    plan_version: int = 0
    memory: bool | None = None  # None: WORKBENCH_MEMORY decides
    memory_owner: str | None = None  # whose memory it reads and writes (None: created before owners were kept)


class TaskPage(BaseModel):
    items: list[Task]
    total: int
    limit: int
    offset: int
