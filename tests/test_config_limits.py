"""Settings refuse what would silently misbehave: a negative or non-finite number (one clear line naming the
variable), an unknown WORKBENCH_* variable (logged once with the closest known name), and `workbench config`
never prints a webhook URL or the credentials inside an OTLP endpoint."""

from __future__ import annotations

import logging

import pytest
from helpers import run_cli

from workbench import env_typos, redact
from workbench.config import env_names, reload_settings
from workbench.errors import ConfigError

WEBHOOK = "https://hooks.slack.com/services/T000/B000/hooksecret123"
OTLP = "https://otel-user:otelpass99@collector.example:4318/v1/traces?token=tok-secret-42&tenant=acme"


@pytest.mark.parametrize(("variable", "value"), [
    ("WORKBENCH_SANDBOX_TIMEOUT_S", "-1"), ("WORKBENCH_SANDBOX_MEMORY_MB", "-512"),
    ("WORKBENCH_REQUEST_TIMEOUT_S", "inf"), ("WORKBENCH_REQUEST_TIMEOUT_S", "nan"),
    ("WORKBENCH_LOCAL_CPU_SECOND_USD", "-0.1"), ("WORKBENCH_SANDBOX_CPUS", "Infinity"),
    ("WORKBENCH_DASK_WORKERS", "-2"),
])
def test_negative_and_non_finite_settings_are_refused(isolated_home, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        reload_settings()
    message = str(refused.value)
    assert variable in message and "\n" not in message and "Fix the variable" in message
    monkeypatch.delenv(variable)
    reload_settings()


def test_zero_still_means_what_each_setting_says(isolated_home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SANDBOX_CPUS", "0")
    monkeypatch.setenv("WORKBENCH_N_THREADS", "0")
    settings = reload_settings()
    assert settings.sandbox_cpus == 0 and settings.n_threads == 0


def test_an_unknown_variable_is_logged_once_with_the_closest_name(isolated_home, monkeypatch):
    monkeypatch.setattr(env_typos, "_WARNED", set())
    # Read from the logger itself, enabled: earlier tests in the same process may have changed logging
    # (a library's set-up disabling existing loggers, handlers, levels); the warning is what is tested.
    logger = logging.getLogger("workbench.config")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "level", logging.WARNING)
    logger.addHandler(handler)
    monkeypatch.setenv("WORKBENCH_SANDBOX_TIMOUT_S", "5")
    monkeypatch.setenv("WORKBENCH_ZZZ_NOTHING_LIKE_IT", "1")
    try:
        reload_settings()
        reload_settings()
    finally:
        logger.removeHandler(handler)
    lines = [r.getMessage() for r in records]
    assert lines.count("Unknown setting WORKBENCH_SANDBOX_TIMOUT_S is ignored; did you mean "
                       "WORKBENCH_SANDBOX_TIMEOUT_S?") == 1
    assert any(line.startswith("Unknown setting WORKBENCH_ZZZ_NOTHING_LIKE_IT") for line in lines)
    assert not any("WORKBENCH_HOME" in line or "WORKBENCH_PORT" in line for line in lines)  # known ones: silent


def test_every_known_variable_is_quiet():
    environ = {name: "1" for name in env_names() | env_typos.OTHER_VARIABLES}
    assert env_typos.unknown(environ, env_names()) == []


def test_config_output_hides_webhook_and_otlp_credentials():
    out = run_cli("config", "--json", env={"WORKBENCH_ALERT_WEBHOOK": WEBHOOK, "WORKBENCH_OTLP_ENDPOINT": OTLP})
    assert out.returncode == 0, out.stderr
    for secret in ("hooksecret123", "B000", "otel-user", "otelpass99", "tok-secret-42", "acme"):
        assert secret not in out.stdout
    assert "collector.example:4318/v1/traces" in out.stdout and "hooks.slack.com" in out.stdout
    table = run_cli("config", env={"WORKBENCH_ALERT_WEBHOOK": WEBHOOK, "WORKBENCH_OTLP_ENDPOINT": OTLP})
    assert table.returncode == 0 and "otelpass99" not in table.stdout and "hooksecret123" not in table.stdout


@pytest.mark.parametrize(("value", "shown"), [
    ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
    ("https://u:p@h.example/x?a=1", "https://****@h.example/x?a=****"),
    ("https://h.example/x#frag", "https://h.example/x#****"),
    ("user:pass@host", "****"),
])
def test_url_redaction(value, shown):
    assert redact.url(value) == shown
