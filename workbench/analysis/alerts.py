"""Alert rules from a YAML file, evaluated on the live store; changes become `alert` events and webhooks.

    manager = AlertManager(load_rules())
    states = manager.check(store)     # evaluates every rule; a rule that starts or stops firing is
                                      # recorded (telemetry.emit("alert", ...)) and POSTed to the webhook

Metrics read Postgres (the system of record) over a look-back window, using the events_ts index, so an
evaluation costs a few small queries however large the log is. Only transitions are recorded: a rule
that keeps firing does not write an event every 30 s. After a restart the last recorded state of each
rule is read back from its newest `alert` event, so nothing fires twice for the same episode.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from workbench.errors import ConfigError
from workbench.schema import FORBID, parse

log = logging.getLogger(__name__)
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "alerts.yaml"
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le}


def _error_rate(conn, window_s: float) -> tuple[float | None, int]:
    total, failed = conn.execute(
        "SELECT count(*), count(error) FROM events WHERE kind = 'llm_call' AND ts > now() - make_interval(secs => %s)",
        (window_s,)).fetchone()
    return (failed / total if total else None), total


def _cost_per_day(conn, window_s: float) -> tuple[float | None, int]:
    n, cost = conn.execute(
        "SELECT count(*), coalesce(sum(cost_usd), 0) FROM events WHERE kind = 'llm_call'"
        " AND ts >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'").fetchone()
    return float(cost), n


def _p95_latency(conn, window_s: float) -> tuple[float | None, int]:
    n, p95 = conn.execute(
        "SELECT count(duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM events"
        " WHERE kind = 'llm_call' AND duration_ms IS NOT NULL AND ts > now() - make_interval(secs => %s)",
        (window_s,)).fetchone()
    return (float(p95) if p95 is not None else None), n


def _failed_tasks(conn, window_s: float) -> tuple[float | None, int]:
    n = conn.execute("SELECT count(*) FROM tasks WHERE status = 'failed' AND finished_at > now() - make_interval(secs => %s)",
                     (window_s,)).fetchone()[0]
    return float(n), n


METRICS: dict[str, Callable[[Any, float], tuple[float | None, int]]] = {
    "error_rate": _error_rate, "cost_per_day_usd": _cost_per_day, "p95_latency_ms": _p95_latency,
    "failed_tasks": _failed_tasks,
}


@pydantic.dataclasses.dataclass(config=FORBID)  # a rule's keys are checked on load: a typo fails, naming it
class Rule:
    name: str
    metric: str
    threshold: float
    op: str = ">"
    window_s: float = 900.0
    min_count: int = 0

    def describe(self) -> str:
        window = "since 00:00 UTC" if self.metric == "cost_per_day_usd" else f"last {self.window_s / 60:g} min"
        return f"{self.metric} {self.op} {self.threshold:g} ({window})"


@dataclass
class AlertState:
    rule: Rule
    value: float | None = None
    count: int = 0
    firing: bool = False
    since: float | None = None  # epoch seconds the current state began (when known)
    evaluated_at: float | None = None
    webhook: str = ""  # outcome of the last delivery: "", "sent 200", "failed: ..."
    history: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("history")
        return d


def load_rules(path: Path | None = None) -> tuple[list[Rule], float]:
    """(rules, interval_s) from `path`, WORKBENCH_ALERTS_FILE or the packaged alerts.yaml."""
    from workbench.config import get_settings

    path = Path(path or get_settings().alerts_file or DEFAULT_FILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"Alert rules file {path} does not exist: fix WORKBENCH_ALERTS_FILE or unset it "
                          f"to use the packaged rules.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc}); fix it or unset WORKBENCH_ALERTS_FILE.") from None
    rules = []
    for i, raw in enumerate(data.get("rules") or []):
        where = f"{path}: rule {i + 1}"
        rule = parse(Rule, raw, where)  # name, metric and threshold required; no other keys than Rule's
        if rule.metric not in METRICS:
            raise ConfigError(f"{where}: unknown metric {rule.metric!r}; one of {', '.join(METRICS)}.")
        if rule.op not in OPS:
            raise ConfigError(f"{where}: op must be one of {', '.join(OPS)}, got {rule.op!r}.")
        rules.append(rule)
    return rules, float(data.get("interval_s", 30))


class AlertManager:
    def __init__(self, rules: list[Rule], webhook: str | None = None, interval_s: float = 30.0):
        self.states = {r.name: AlertState(r) for r in rules}
        self.webhook = webhook
        self.interval_s = interval_s
        self.last_check: float | None = None
        self._restored = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> AlertManager:
        from workbench.config import get_settings

        rules, interval = load_rules()
        return cls(rules, get_settings().alert_webhook, interval)

    def _restore(self, conn) -> None:
        """Pick up each rule's last recorded state (a restart must not fire the same episode again)."""
        rows = conn.execute(
            "SELECT DISTINCT ON (payload->>'rule') payload->>'rule', payload->>'state', extract(epoch FROM ts)"
            " FROM events WHERE kind = 'alert' ORDER BY payload->>'rule', seq DESC").fetchall()
        for name, state, ts in rows:
            if name in self.states:
                self.states[name].firing = state == "firing"
                self.states[name].since = float(ts)
        self._restored = True

    def check(self, store) -> list[AlertState]:
        """Evaluate every rule now; record and deliver the ones that changed. Thread-safe."""
        with self._lock:
            changed = []
            with store.connection() as conn:
                if not self._restored:
                    self._restore(conn)
                for state in self.states.values():
                    rule = state.rule
                    value, count = METRICS[rule.metric](conn, rule.window_s)
                    state.value, state.count, state.evaluated_at = value, count, time.time()
                    firing = value is not None and count >= rule.min_count and OPS[rule.op](value, rule.threshold)
                    if firing != state.firing:
                        state.firing, state.since = firing, time.time()
                        changed.append(state)
            self.last_check = time.time()
        for state in changed:
            self._record(state)
        return list(self.states.values())

    def _record(self, state: AlertState) -> None:
        from workbench import telemetry

        rule = state.rule
        body = {"rule": rule.name, "state": "firing" if state.firing else "resolved", "metric": rule.metric,
                "value": state.value, "threshold": rule.threshold, "op": rule.op, "window_s": rule.window_s,
                "count": state.count, "condition": rule.describe(), "at": state.since}
        state.history.append(body)
        telemetry.emit("alert", agent="alerts", error=None, payload=body)
        if self.webhook:
            state.webhook = post(self.webhook, body)


def post(url: str, body: dict[str, Any], timeout_s: float = 5.0) -> str:
    """POST one alert as JSON; returns what happened (a failing receiver never breaks the evaluation)."""
    import httpx

    try:
        r = httpx.post(url, json={"source": "workbench", "alert": body}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)
        return f"failed: {type(exc).__name__}: {exc}. Check WORKBENCH_ALERT_WEBHOOK."
    return f"sent, HTTP {r.status_code}" if r.status_code < 400 else f"failed: HTTP {r.status_code} from the receiver"
