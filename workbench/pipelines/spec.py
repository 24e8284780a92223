"""`pipelines/NAME.yaml`: which notebook to run, its parameters (typed by their defaults) and when.

    notebook: pipelines/execution_report.ipynb   # relative to the repository; inside pipelines/ or notebooks/
    description: Nightly execution-log report
    schedule: "0 3 * * *"                        # cron, 5 fields, UTC; omit for manual runs only
    parameters: {hours: 24}                      # a value given at run time must have the default's type
    cell_timeout_s: 600

Every problem with a file is one WorkbenchError naming the file and how to fix it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from workbench.errors import WorkbenchError, field_errors

NOTEBOOK_DIRS = ("pipelines", "notebooks")
CRON_HELP = "5 fields: minute hour day-of-month month day-of-week, in UTC, e.g. '0 3 * * *' for 03:00 every night"
ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr


class PipelineError(WorkbenchError):
    """A pipeline file or a run request is wrong: a usage error (exit 2)."""

    http_status = 422
    exit_code = 2


class UnknownPipeline(PipelineError):
    http_status = 404


def repo_root() -> Path:
    """The directory holding `pipelines/` (the checkout, or site-packages for an installed wheel)."""
    return Path(__file__).resolve().parents[2]


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notebook: str = Field(description="Notebook path relative to the repository, inside pipelines/ or notebooks/.")
    description: str = ""
    schedule: str | None = Field(None, description=CRON_HELP)
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    cell_timeout_s: float = Field(600, gt=0, description="Longest a single cell may run.")
    enabled: bool = True


class Pipeline(BaseModel):
    """A checked spec with its name and resolved notebook path."""

    model_config = ConfigDict(frozen=True)

    name: str
    spec: PipelineSpec
    notebook_path: Path
    source: Path

    def next_runs(self, after: datetime, count: int = 1) -> list[datetime]:
        if not self.spec.schedule:
            return []
        from croniter import croniter

        it = croniter(self.spec.schedule, after)
        return [it.get_next(datetime) for _ in range(count)]

    def last_due(self, now: datetime) -> datetime | None:
        """The latest scheduled time at or before `now` (get_prev alone is strictly before)."""
        if not self.spec.schedule:
            return None
        from croniter import croniter

        return croniter(self.spec.schedule, now + timedelta(seconds=1)).get_prev(datetime)


def check_cron(expr: str, where: str) -> None:
    from croniter import croniter

    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise PipelineError(f"{where}: schedule {expr!r} is not a valid cron expression ({CRON_HELP}).")


def check_notebook(notebook: str, root: Path, where: str) -> Path:
    path = (root / notebook).resolve()
    allowed = [(root / d).resolve() for d in NOTEBOOK_DIRS]
    if not any(path.is_relative_to(d) for d in allowed):
        raise PipelineError(f"{where}: notebook {notebook!r} is outside the repository's "
                            f"{' or '.join(d + '/' for d in NOTEBOOK_DIRS)}: move it there and give its path "
                            f"relative to the repository, e.g. pipelines/report.ipynb.")
    if path.suffix != ".ipynb" or not path.is_file():
        raise PipelineError(f"{where}: notebook {notebook!r} does not exist (looked at {path}).")
    return path


def load(path: Path, root: Path | None = None) -> Pipeline:
    """One pipeline file, checked (PipelineError says what is wrong and where)."""
    root = (root or repo_root()).resolve()
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"{where}: cannot read it as YAML ({' '.join(str(exc).split())}).") from None
    try:
        spec = PipelineSpec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise PipelineError(f"{where}: {field_errors(exc.errors())}. Allowed keys: "
                            f"{', '.join(PipelineSpec.model_fields)}.") from None
    if spec.schedule is not None:
        check_cron(spec.schedule, where)
    notebook = check_notebook(spec.notebook, root, where)
    return Pipeline(name=Path(path).stem, spec=spec, notebook_path=notebook, source=Path(path))


def load_all(root: Path | None = None) -> tuple[list[Pipeline], list[PipelineError]]:
    """Every `pipelines/*.yaml` under `root`, and the errors of those that do not load (a broken file must
    not stop the others from being scheduled)."""
    root = root or repo_root()
    found, errors = [], []
    for path in sorted((root / "pipelines").glob("*.yaml")):
        try:
            found.append(load(path, root))
        except PipelineError as exc:
            errors.append(exc)
    return found, errors


def get(name: str, root: Path | None = None) -> Pipeline:
    root = root or repo_root()
    path = root / "pipelines" / f"{name}.yaml"
    if not path.is_file():
        names = [p.stem for p in sorted((root / "pipelines").glob("*.yaml"))]
        raise UnknownPipeline(f"No pipeline {name!r}: the pipelines are {', '.join(names) or '(none)'} "
                              f"(files pipelines/NAME.yaml; `workbench pipelines list` shows them).")
    return load(path, root)


# --- parameters ------------------------------------------------------------------------------------

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def coerce(pipeline: Pipeline, given: dict[str, Any]) -> dict[str, Any]:
    """The defaults with `given` applied; each value must have its default's type. A string (from the
    command line) is parsed as that type; anything else must already be one."""
    defaults = pipeline.spec.parameters
    out = dict(defaults)
    for name, value in given.items():
        if name not in defaults:
            raise PipelineError(f"Pipeline {pipeline.name!r} has no parameter {name!r}: its parameters are "
                                f"{', '.join(f'{k} ({type(v).__name__})' for k, v in defaults.items()) or '(none)'}.")
        out[name] = _typed(pipeline.name, name, value, defaults[name])
    return out


def _typed(pipeline: str, name: str, value: Any, default: Any) -> Any:
    kind = type(default)
    bad = PipelineError(f"Parameter {name!r} of pipeline {pipeline!r} must be {kind.__name__} "
                        f"(its default is {default!r}), not {value!r}.")
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise bad
        try:
            return kind(text)
        except ValueError:
            raise bad from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise bad
    return value


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`-p k=v` options as a dict (values stay strings until `coerce`)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise PipelineError(f"Parameter {pair!r} is not NAME=VALUE: write e.g. -p hours=48.")
        out[name.strip()] = value
    return out
