"""Settings: env vars with the WORKBENCH_ prefix, provider aliases, masking, docker-compose wiring."""

from __future__ import annotations

import yaml

from helpers import REPO, run_cli
from workbench.config import env_names, reload_settings


def test_prefix_and_aliases(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_MODEL", "local:smollm2-135m")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890abcdef")
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(tmp_path / "m"))
    s = reload_settings()
    assert s.model == "local:smollm2-135m"
    assert s.openai_api_key.get_secret_value() == "sk-test-1234567890abcdef"
    assert s.ollama_host == "http://127.0.0.1:9"
    assert s.models_dir == tmp_path / "m"


def test_home_is_per_test(isolated_home):
    assert reload_settings().home == isolated_home


def test_secrets_masked_in_cli(monkeypatch):
    secret = "sk-very-secret-value-abcdef123456"
    out = run_cli("config", "--json", env={"OPENAI_API_KEY": secret, "WORKBENCH_API_KEY": "topsecretkey99"})
    assert out.returncode == 0, out.stderr
    assert secret not in out.stdout and "topsecretkey99" not in out.stdout
    assert "****3456" in out.stdout


def test_bad_setting_is_a_clear_error():
    out = run_cli("config", env={"WORKBENCH_PORT": "not-a-port"})
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "port" in out.stderr.lower()


def test_compose_parses_and_uses_only_known_variables():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "ollama", "dask-scheduler", "dask-worker", "workbench"} <= set(services)
    known = env_names()
    for name in ("workbench", "dask-worker"):
        env = services[name]["environment"]
        unknown = sorted(set(env) - known)
        assert not unknown, f"{name} sets variables Settings does not know: {unknown}"
    assert "WORKBENCH_POSTGRES_URL" in services["workbench"]["environment"]
    assert "WORKBENCH_DASK_SCHEDULER" in services["dask-worker"]["environment"]
