"""The machine's own health checks: weights, the llama.cpp build, the default model, providers,
DuckDB, Chromium, bubblewrap, disk. Components register theirs next to their code; `workbench.doctor`
runs them all.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import workbench
from workbench import llama_build, providers, smoke
from workbench.config import REPO_ROOT, get_settings
from workbench.errors import ProviderUnreachable, WorkbenchError
from workbench.health import Outcome, check
from workbench.prices import listed_models
from workbench.providers.local import status as local_status

CLOUD_DOWN = "calls to this provider's models fail over along the gateway's policy chain (to the local model)"


# --- checks of the foundation ----------------------------------------------------------------


@check("weights", impact="the local model cannot answer; cloud models (when configured) still can")
def _weights() -> Outcome:
    name = providers.resolve(None)
    if not name.startswith("local:"):
        return "skip", f"default model is {name}", ""
    ok, reason = local_status(name.removeprefix("local:"))
    fix = f"workbench models pull {name.removeprefix('local:')}"
    return ("ok", f"{name}: {reason}", "") if ok else ("fail", f"{name}: {reason}", fix)


@check("llama.cpp build")
def _llama_build() -> Outcome:
    """The installed llama.cpp is setup's portable build, byte for byte, and its features fit this CPU."""
    fix = f"rebuild it: {_llama_install_command()}"
    ok, detail = llama_build.verify_installed()
    if not ok:
        return "fail", f"{detail}; pip's own build uses -march=native, which crashes on CPUs with AMX", fix
    record = llama_build.installed_marker() or {}
    flags = llama_build.cpu_flags(llama_build.read_cpuinfo())
    lacking = [f for f in record.get("features", []) if not llama_build.has_feature(flags, f)]
    if lacking:
        return "fail", f"built for {record.get('variant')}, but this CPU lacks {', '.join(lacking)}", fix
    return "ok", detail, ""


def _llama_install_command() -> str:
    if (REPO_ROOT / "Makefile").is_file():
        return "make llama-rebuild (add LLAMA_VARIANT=haswell for an AVX2-only build)"
    return "python -m workbench.llama_build install --rebuild"


@check("model smoke", heavy=True)
def _model_smoke() -> Outcome:
    """One short generation in a child process, so a native crash is reported here, not suffered."""
    name = providers.resolve(None)
    if not name.startswith("local:"):
        return "skip", f"default model is {name}", ""
    result = smoke.run_installed([name.removeprefix("local:")])[0]
    return ("ok", result.detail, "") if result.ok else ("fail", result.detail, result.fix)


@check("default model answers", heavy=True)
def _model_answers() -> Outcome:
    name = get_settings().model
    c = workbench.get_model(name).complete("Reply with the single word: ok", max_tokens=1, temperature=0)
    if c.usage.output_tokens < 1:
        return "fail", f"{c.model} returned no tokens", "workbench models pull --force <name>"
    return "ok", f"{c.model} answered {c.text.strip()!r} in {c.duration_ms:.0f} ms", ""


def _provider_check(provider: str, configured: bool, variable: str) -> Outcome:
    if not configured:
        return "skip", f"{variable} not set", ""
    infos = [i for i in providers.list_models() if i.provider == provider]
    if not infos:
        return "skip", "no models listed", ""
    try:
        _ping(provider)
    except WorkbenchError as exc:
        return "fail", str(exc), f"check {variable} and the base URL"
    return "ok", f"{len(infos)} model(s) listed, endpoint answered", ""


def _ping(provider: str) -> None:
    """Reach the endpoint without spending tokens: list models (one HTTP GET)."""
    s = get_settings()
    if provider == "ollama":
        from workbench.providers.ollama import _tags

        _tags()
        return
    model = providers.get_model(f"{provider}:{next(iter(_priced(provider)), 'x')}")
    try:
        model.client().models.list()
    except Exception as exc:
        raise ProviderUnreachable(provider, getattr(model, "base_url", "?"), s.request_timeout_s, type(exc).__name__) from exc


def _priced(provider: str) -> list[str]:
    return list(listed_models(provider))


@check("provider openai", impact=CLOUD_DOWN)
def _openai() -> Outcome:
    return _provider_check("openai", get_settings().openai_api_key is not None, "OPENAI_API_KEY")


@check("provider groq", impact=CLOUD_DOWN)
def _groq() -> Outcome:
    return _provider_check("groq", get_settings().groq_api_key is not None, "GROQ_API_KEY")


@check("provider mistral", impact=CLOUD_DOWN)
def _mistral() -> Outcome:
    s = get_settings()
    if s.mistral_api_key is None:
        return "skip", "MISTRAL_API_KEY not set", ""
    import httpx

    url = (s.mistral_base_url or "https://api.mistral.ai").rstrip("/") + "/v1/models"
    try:
        httpx.get(url, headers={"Authorization": f"Bearer {s.mistral_api_key.get_secret_value()}"}, timeout=5)
    except httpx.HTTPError as exc:
        return "fail", f"{url}: {type(exc).__name__}", "check MISTRAL_API_KEY and WORKBENCH_MISTRAL_BASE_URL"
    return "ok", "endpoint answered", ""


@check("provider ollama", impact=CLOUD_DOWN)
def _ollama() -> Outcome:
    return _provider_check("ollama", get_settings().ollama_host is not None, "OLLAMA_HOST")


@check("duckdb", impact="analytics (dashboards, the data specialist, notebooks) show data as of the last sync; "
                         "tasks and events are unaffected and the sync catches up once the file is free")
def _duckdb() -> Outcome:
    """DuckDB works here, and the analytics file can be written: a sync in this process reports its last
    round; otherwise the file is opened read-only (another process holding it for writing locks us out)."""
    import duckdb

    from workbench.store import current_store

    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "probe.duckdb"))
        value = con.execute("select 42").fetchone()[0]
        con.close()
    if value != 42:
        return "fail", "wrong answer", ""
    path = get_settings().duckdb_path
    fix = (f"close the other process that has {path} open (a duckdb shell or notebook?); notebooks should use "
           f"workbench.store.analytics.query(), which reads the Parquet snapshots")
    store = current_store()
    sync = getattr(store, "background_sync", None)
    if sync is not None:
        if sync.last_error:
            return "fail", f"the DuckDB sync into {path} fails: {sync.last_error[:300]}", fix
        return "ok", f"duckdb {duckdb.__version__}; {path} synced ({sync.rounds} round(s))", ""
    if path.exists():
        try:
            duckdb.connect(str(path), read_only=True).close()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                return "fail", f"{path} is locked by another process: {str(exc)[:200]}", fix
            raise
    return "ok", f"duckdb {duckdb.__version__} answers", ""


@check("dask", impact="new tasks wait (none starts) until the scheduler is back; the API and /v1 model calls "
                      "still answer")
def _dask() -> Outcome:
    from workbench import cluster

    if cluster.current_client() is None:
        address = get_settings().dask_scheduler
        return "skip", (f"no client in this process (scheduler {address})" if address
                        else "no client in this process (`workbench serve` starts a local cluster)"), ""
    ok, detail = cluster.health()
    return ("ok", detail, "") if ok else ("fail", detail, "start the scheduler again (`dask scheduler`) or "
                                                        "check WORKBENCH_DASK_SCHEDULER; the client reconnects")


@check("disk space")
def _disk() -> Outcome:
    s = get_settings()
    s.home.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(s.home).free / 2**30
    if free_gb < 2:
        return "fail", f"{free_gb:.1f} GiB free under {s.home}", "free some disk: weights need ~1.7 GiB"
    return "ok", f"{free_gb:.0f} GiB free under {s.home}", ""
