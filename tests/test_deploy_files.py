"""The Dockerfile and docker-compose.yml, checked offline (no Docker engine on the development machines).

The Dockerfile is parsed into instructions: its base image is pinned by a version tag, every COPY source
exists and is not left out by .dockerignore (nor is any file the build reads), llama.cpp is built for a CPU
baseline (never -march=native), no Debian nodejs (18) is installed, the processes run as a non-root user,
the app's port is exposed and the healthcheck really probes /health (its command is run against a real
listener). docker-compose.yml is read the way `docker compose config` reads it (anchors merged, ${VAR:-x}
interpolated): the services and their wiring are complete and every WORKBENCH_* value parses as a setting.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import yaml
from helpers import REPO, free_port

from workbench import llama_build
from workbench.config import Settings, env_names

# Files `make venv`, `make toolchain` and the CMD read inside the image: .dockerignore must keep them.
BUILD_INPUTS = ("Makefile", "pyproject.toml", "requirements.lock", "scripts/setup-system.sh",
                "scripts/setup-toolchain.sh", "workbench/llama_build.py", "workbench/__init__.py",
                "deploy/docker/serve.sh", "dashboards/__init__.py")
VERSION_TAG = re.compile(r"^\d+\.\d+\.\d+")  # e.g. 3.11.7-slim-bookworm; not `latest`, not a bare `3`


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined (comments inside a continued RUN dropped)."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        name, _, args = line.partition(" ")
        out.append(Instruction(name.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rules, enough for our file: the last matching pattern wins, `!` re-includes, a directory
    pattern covers what is under it, `**/` matches at any depth."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
        hit = any(fnmatch.fnmatchcase(p, c) for c in candidates for p in prefixes)
        if pattern.startswith("**/"):
            hit = hit or any(fnmatch.fnmatchcase(s, pattern[3:]) or fnmatch.fnmatchcase(s.split("/")[0], pattern[3:])
                             for s in suffixes)
        if hit:
            excluded = not negate
    return excluded


def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def dockerfile() -> list[Instruction]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    args = {}
    for ins in instructions:
        if ins.name == "ARG":
            name, _, default = ins.args.partition("=")
            args[name] = default
    return args


def test_parser_joins_continuations_and_the_ignore_rules_match_like_docker():
    parsed = parse_dockerfile("FROM a:1\n# c\nRUN x \\\n    && y\nUSER u\n")
    assert parsed == [Instruction("FROM", "a:1"), Instruction("RUN", "x  && y"), Instruction("USER", "u")]
    rules = [".venv", "data/", "**/__pycache__", "*.gguf", "!keep.gguf"]
    assert dockerignore_excludes(rules, ".venv/bin/python")
    assert dockerignore_excludes(rules, "data/models/x.gguf")
    assert dockerignore_excludes(rules, "workbench/server/__pycache__/app.pyc")
    assert dockerignore_excludes(rules, "m.gguf") and not dockerignore_excludes(rules, "keep.gguf")
    assert not dockerignore_excludes(rules, "workbench/data.py")


def test_base_image_is_pinned_by_a_version_tag_that_matches_the_project_python():
    froms = [i.args.split()[0] for i in dockerfile() if i.name == "FROM"]
    assert froms, "the Dockerfile has no FROM"
    for image in froms:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and VERSION_TAG.match(tag), f"{image}: pin the base image by a version tag"
    python_tag = froms[0].partition(":")[2]
    assert python_tag.startswith(f"{sys.version_info.major}.{sys.version_info.minor}."), (
        f"{froms[0]} is not the Python the lock file was made with ({sys.version.split()[0]})")


def test_every_copy_source_exists_and_reaches_the_build_context():
    patterns = ignore_patterns()
    copies = [i for i in dockerfile() if i.name in ("COPY", "ADD")]
    assert copies
    for ins in copies:
        sources = [a for a in shlex.split(ins.args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            if source != ".":
                assert not dockerignore_excludes(patterns, source), f"COPY {source}: .dockerignore leaves it out"
    for path in BUILD_INPUTS:
        assert (REPO / path).exists(), path
        assert not dockerignore_excludes(patterns, path), f"{path} is needed by the build: .dockerignore leaves it out"
    for heavy in (".venv/bin/python", ".git/HEAD", "data/models/x.gguf", "artifacts/site/index.html"):
        assert dockerignore_excludes(patterns, heavy), f"{heavy} would be sent as build context"


def test_llama_cpp_is_built_for_a_cpu_baseline_never_native():
    instructions = dockerfile()
    text = " ".join(f"{i.name} {i.args}" for i in instructions)  # instructions, not the comments
    assert "-march=native" not in text and "-mcpu=native" not in text and "GGML_NATIVE=ON" not in text
    variant = build_args(instructions).get("LLAMA_VARIANT")
    assert variant in llama_build.VARIANTS, f"LLAMA_VARIANT={variant!r}: choose one of {sorted(llama_build.VARIANTS)}"
    assert variant == next(iter(llama_build.VARIANTS)), "the image's default should be the lowest variant (portable)"
    cmake = llama_build.LlamaBuild(variant, llama_build.VARIANTS[variant], pinned=True).cmake_args
    assert "-DGGML_NATIVE=OFF" in cmake and not any("AMX" in a and a.endswith("=ON") for a in cmake)
    assert any("make venv" in i.args and "LLAMA_VARIANT=${LLAMA_VARIANT}" in i.args for i in instructions if i.name == "RUN")


def test_node_is_never_debians_18_and_the_toolchain_brings_20_or_newer():
    runs = " ".join(i.args for i in dockerfile() if i.name == "RUN")
    assert not re.search(r"apt-get install[^&]*\bnodejs\b", runs), "Debian bookworm's nodejs is 18: too old"
    assert "make toolchain" in runs and "CI=true make toolchain" in runs  # a toolchain that fails fails the build
    wheel = re.search(r"^NODE_WHEEL=(\d+)\.", (REPO / "scripts/setup-toolchain.sh").read_text(), re.M)
    assert wheel and int(wheel.group(1)) >= 20


def test_processes_run_as_a_non_root_user_that_owns_only_the_data_and_models():
    instructions = dockerfile()
    users = [(n, i.args) for n, i in enumerate(instructions) if i.name == "USER"]
    assert users, "no USER: the processes would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    cmd_index = max(n for n, i in enumerate(instructions) if i.name == "CMD")
    assert index < cmd_index
    env = " ".join(i.args for i in instructions if i.name == "ENV")
    assert "WORKBENCH_HOME=/data" in env and "WORKBENCH_MODELS_DIR=/models" in env
    assert any("chown" in i.args and "/data" in i.args and "/models" in i.args for i in instructions[:index])


def test_ports_are_exposed_and_the_healthcheck_probes_health():
    instructions = dockerfile()
    exposed = {int(p.split("/")[0]) for i in instructions if i.name == "EXPOSE" for p in i.args.split()}
    assert Settings.model_fields["port"].default in exposed
    assert {8786, 8787} <= exposed  # Dask scheduler and its dashboard (same image)
    checks = [i.args for i in instructions if i.name == "HEALTHCHECK"]
    assert len(checks) == 1 and "/health" in checks[0]


def _healthcheck_argv() -> list[str]:
    check = next(i.args for i in dockerfile() if i.name == "HEALTHCHECK")
    exec_form = check[check.index("CMD") + 3:].strip()
    return json.loads(exec_form)


class _Health(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        ok = self.path.startswith("/health")
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


def test_the_healthcheck_command_passes_on_a_live_health_and_fails_on_a_dead_port():
    argv = _healthcheck_argv()
    assert argv[0] == "python"
    argv = [sys.executable, *argv[1:]]
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "WORKBENCH_PORT": str(port)}
        live = subprocess.run(argv, env=env, capture_output=True, timeout=30)
        assert live.returncode == 0, live.stderr
        assert _Health.seen and _Health.seen[-1].startswith("/health")
    finally:
        server.shutdown()
        server.server_close()
    dead = subprocess.run(argv, env={**os.environ, "WORKBENCH_PORT": str(port)}, capture_output=True, timeout=30)
    assert dead.returncode != 0


@pytest.mark.parametrize("model,pulls", [("local:qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b"), ("openai:gpt-4o-mini", None)])
def test_the_app_command_pulls_local_weights_then_serves_on_every_interface(tmp_path, model, pulls):
    cmd = next(i.args for i in dockerfile() if i.name == "CMD")
    script = json.loads(cmd)[0]
    assert script.startswith("/app/")
    path = REPO / script.removeprefix("/app/")
    assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
    # A recording `workbench` on PATH: the script's real shell logic runs, no model is pulled.
    fake = tmp_path / "bin" / "workbench"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "WORKBENCH_MODEL": model, "WORKBENCH_PORT": "5099"}
    done = subprocess.run(["sh", str(path)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    expected = ([f"models pull {pulls}"] if pulls else []) + ["serve --host 0.0.0.0 --port 5099"]
    assert calls == expected


# --- docker-compose.yml ------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (a missing required one is an error)."""
    def one(m: re.Match) -> str:
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        given = env.get(name)
        if op in (":?", "?") and not given:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and not given:
            return arg
        return given or ""
    return INTERPOLATION.sub(one, value)


def compose(env: dict[str, str]) -> dict:
    """docker-compose.yml as `docker compose config` would print it: merged and interpolated."""
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if not str(k).startswith("x-")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return interpolate(node, env) if isinstance(node, str) else node
    return walk(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


SECRETS = {"WORKBENCH_API_KEY": "k" * 32, "POSTGRES_PASSWORD": "pw-for-the-test"}


def test_interpolation_defaults_and_required_variables():
    assert interpolate("a-${X:-dflt}-${Y}", {"Y": "y"}) == "a-dflt-y"
    with pytest.raises(KeyError, match="WORKBENCH_API_KEY"):
        compose({})  # the app is never exposed without a key


def test_compose_has_every_service_wired_to_each_other():
    services = compose(SECRETS)["services"]
    assert {"workbench", "postgres", "dask-scheduler", "dask-worker"} <= set(services)
    app, worker = services["workbench"], services["dask-worker"]
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image} by a tag"
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on {dep}, which is no service"
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert app["image"] == f"workbench:{version}" and services["dask-scheduler"]["build"] == "."
    assert worker["image"] == app["image"] == services["dask-scheduler"]["image"]  # workers unpickle the app's code
    assert "pgvector" in services["postgres"]["image"]

    for env in (app["environment"], worker["environment"]):
        pg = urlsplit(env["WORKBENCH_POSTGRES_URL"])
        assert (pg.hostname, pg.port, pg.password) == ("postgres", 5432, SECRETS["POSTGRES_PASSWORD"])
        assert pg.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]
        scheduler = urlsplit(env["WORKBENCH_DASK_SCHEDULER"])
        assert scheduler.hostname == "dask-scheduler"
        assert f"--port {scheduler.port}" in services["dask-scheduler"]["command"]
    assert worker["command"].split()[:3] == ["dask", "worker", worker["environment"]["WORKBENCH_DASK_SCHEDULER"]]
    assert "--resources LLM=1" in worker["command"]
    container_port = int(app["ports"][0].rsplit(":", 1)[1])
    assert container_port == int(app["environment"]["WORKBENCH_PORT"])
    assert app["environment"]["WORKBENCH_API_KEY"] == SECRETS["WORKBENCH_API_KEY"]
    assert app["environment"]["WORKBENCH_HOST"] == "0.0.0.0"


def test_compose_sets_only_known_variables_and_their_values_parse(monkeypatch):
    services = compose({**SECRETS, "OPENAI_API_KEY": "sk-test-123456"})["services"]
    known = env_names()
    for name in ("workbench", "dask-worker"):
        env = services[name]["environment"]
        unknown = sorted(k for k in env if k not in known)
        assert not unknown, f"{name} sets variables the settings do not know: {unknown}"
        for key in list(os.environ):
            if key.startswith("WORKBENCH_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()  # raises on a value that does not parse (a port, a number, a URL)
        assert settings.dask_scheduler == env["WORKBENCH_DASK_SCHEDULER"]
        assert settings.postgres_url.get_secret_value() == env["WORKBENCH_POSTGRES_URL"]
        assert str(settings.home) == "/data" and str(settings.models_dir) == "/models"
