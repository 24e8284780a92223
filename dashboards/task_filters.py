"""The Tasks page's filter bar: its parameters, their widgets, the `TaskFilter` they make, and their URL form.

`FilterControls` is mixed into the page, so a test sets `page.status_filter = "failed"` and the list follows.
The filtering itself happens in Postgres (workbench.tasks.task_filter: one fixed query, bound parameters);
here the widgets' values become a TaskFilter, and the URL's query string becomes widget values, so a
filtered view can be shared and reloaded (`/tasks?status=failed&model=test:echo&from=2026-01-02`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import panel as pn
import param
from pydantic import ValidationError

from workbench.tasks.states import TRANSITIONS
from workbench.tasks.task_filter import FilterChoices, FilterError, TaskFilter, from_query, to_query

ANY = "all"
ERROR_CHOICES = {"any": None, "with errors": True, "without errors": False}
FILTER_PARAMS = ("status_filter", "search", "model_filter", "agent_filter", "cost_min", "cost_max", "duration_min",
                 "duration_max", "has_error", "created", "cost_bucket")


class FilterControls(param.Parameterized):
    """The filter parameters of the Tasks page (see the module)."""

    status_filter = param.Selector(default=ANY, objects=[ANY, *TRANSITIONS], doc="Show tasks with this status")
    search = param.String(default="", doc="Title contains")
    # check_on_set=False: a shared link may name a model or agent this store has not seen (yet): it then
    # matches nothing, which the empty state says, instead of the link being refused.
    model_filter = param.Selector(default=ANY, objects=[ANY], check_on_set=False,
                                  doc="The task's model, or a model one of its calls used")
    agent_filter = param.Selector(default=ANY, objects=[ANY], check_on_set=False,
                                  doc="An agent (specialist) that worked on the task")
    cost_min = param.Number(default=None, allow_None=True, doc="Cost of the task's model calls, at least (USD)")
    cost_max = param.Number(default=None, allow_None=True, doc="Cost of the task's model calls, at most (USD)")
    duration_min = param.Number(default=None, allow_None=True, doc="Run time, at least (seconds)")
    duration_max = param.Number(default=None, allow_None=True, doc="Run time, at most (seconds)")
    has_error = param.Selector(default="any", objects=list(ERROR_CHOICES), doc="Tasks with or without an error")
    created = param.CalendarDateRange(default=None, allow_None=True, doc="Created between these days (UTC)")
    cost_bucket = param.Selector(default="day", objects=["day", "hour"], doc="Cost over time: one bar per")
    clear_filters = param.Event(doc="Show every task again")

    def task_filter(self) -> TaskFilter:
        """The filter the widgets describe; FilterError (one line saying what to change) when it cannot be."""
        start, end = self.created or (None, None)
        try:
            return TaskFilter(
                status=None if self.status_filter == ANY else self.status_filter, search=self.search.strip(),
                model=None if self.model_filter == ANY else self.model_filter,
                agent=None if self.agent_filter == ANY else self.agent_filter,
                cost_min=self.cost_min, cost_max=self.cost_max, duration_min=self.duration_min,
                duration_max=self.duration_max, has_error=ERROR_CHOICES[self.has_error],
                created_from=_day(start), created_to=_day(end))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ())) or "filter"
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            raise FilterError(f"The filter cannot be used ({field}: {msg}). Change it, or press Clear filters.") from None

    def filtering(self) -> bool:
        """Whether any filter is set (the empty state then says no task matches, not that there are none)."""
        return any(getattr(self, p) != self.param[p].default for p in FILTER_PARAMS if p != "cost_bucket")

    def filter_query(self) -> dict[str, str]:
        """The URL query parameters of the current filter (empty ones left out)."""
        try:
            query = to_query(self.task_filter())
        except FilterError:
            query = {}
        if self.cost_bucket != self.param.cost_bucket.default:
            query["per"] = self.cost_bucket
        return query

    def apply_query(self, query: Mapping[str, object]) -> list[str]:
        """Set the widgets from a URL query; returns one line per value that was ignored (and why)."""
        f, problems = from_query(query)
        per = query.get("per")
        if isinstance(per, (list, tuple)):
            per = per[-1] if per else None
        values: dict[str, object] = {
            "status_filter": f.status or ANY, "search": f.search, "model_filter": f.model or ANY,
            "agent_filter": f.agent or ANY, "cost_min": f.cost_min, "cost_max": f.cost_max,
            "duration_min": f.duration_min, "duration_max": f.duration_max,
            "has_error": next(k for k, v in ERROR_CHOICES.items() if v is f.has_error),
            "created": (f.created_from or f.created_to or dt.date(1970, 1, 1), f.created_to or dt.date.today())
            if (f.created_from or f.created_to) else None}
        if per:
            if per in self.param.cost_bucket.objects:
                values["cost_bucket"] = per
            else:
                problems.append(f"per={per!r} was ignored: use per=day or per=hour")
        self.param.update(**values)
        return problems

    def reset_filters(self) -> None:
        self.param.update(**{p: self.param[p].default for p in FILTER_PARAMS if p != "cost_bucket"})

    def set_choices(self, choices: FilterChoices) -> None:
        """Offer the models and agents present in the store (keeping a chosen value that is not among them)."""
        for name, values in (("model_filter", choices.models), ("agent_filter", choices.agents)):
            current = getattr(self, name)
            objects = [ANY, *values] + ([current] if current not in (ANY, *values) else [])
            if objects != self.param[name].objects:
                self.param[name].objects = objects

    def filter_widgets(self) -> pn.Column:
        num = {"width": 110, "step": 0.001}
        return pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.status_filter, name="Status", width=150),
                   pn.widgets.Select.from_param(self.param.model_filter, name="Model", width=200),
                   pn.widgets.Select.from_param(self.param.agent_filter, name="Agent", width=150),
                   pn.widgets.Select.from_param(self.param.has_error, name="Errors", width=140),
                   pn.widgets.TextInput.from_param(self.param.search, name="Title contains", width=200)),
            pn.Row(pn.widgets.FloatInput.from_param(self.param.cost_min, name="Cost ≥ (USD)", **num),
                   pn.widgets.FloatInput.from_param(self.param.cost_max, name="Cost ≤ (USD)", **num),
                   pn.widgets.FloatInput.from_param(self.param.duration_min, name="Run time ≥ (s)", width=110, step=1),
                   pn.widgets.FloatInput.from_param(self.param.duration_max, name="Run time ≤ (s)", width=110, step=1),
                   pn.widgets.DateRangePicker.from_param(self.param.created, name="Created (UTC)", width=230),
                   pn.widgets.Button.from_param(self.param.clear_filters, name="Clear filters", width=110,
                                                margin=(24, 5, 5, 5))),
            sizing_mode="stretch_width")


def _day(value: object) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value  # type: ignore[return-value]
