"""One typed Settings object, read from WORKBENCH_* environment variables (and an optional .env).

Providers' conventional variables (OPENAI_API_KEY, OLLAMA_HOST, ...) are read as aliases, so a user
who already has them set needs nothing else. Every number must be finite and 0 or more (a limit of -1 or
inf is refused, never read as "unlimited"); an unknown WORKBENCH_* variable is logged with the closest name.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """`data/` in a checkout (where `make` runs); the per-user data directory for an installed package."""
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "workbench" / "__init__.py").is_file():
        return REPO_ROOT / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir("workbench", appauthor=False))


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH_", env_file=".env", extra="ignore", populate_by_name=True, allow_inf_nan=False
    )

    # Where things live
    home: Path = Field(default_factory=default_home, description="Runtime data: databases, logs, artifacts.")
    models_dir: Path = Field(default_factory=lambda: default_home() / "models", description="Verified model weights.")
    toolchain_dir: Path = Field(
        Path("/opt/workbench-toolchain"), description="Sandbox runtimes, outside the repo and home."
    )

    # Models
    model: str = Field("local:qwen2.5-coder-1.5b", description="Default model for every call.")
    test_model: str = Field("local:qwen2.5-coder-0.5b", description="Small model used by the tests.")
    n_ctx: int = Field(4096, description="Context window for local models (tokens).")
    n_threads: int = Field(0, description="CPU threads for local models; 0 = all cores.")
    local_prompt_cache_mb: int = Field(
        256, ge=0, description="Memory (MiB) each local model host keeps of evaluated prompts' KV state, so a later "
                               "prompt starting the same way (system prompt, task text) skips that part; 0 = off."
    )
    local_prompt_cache_disk_mb: int = Field(
        512, ge=0, description="Disk (MiB) under WORKBENCH_HOME/cache/prompt-prefix that local model hosts share for "
                               "evaluated prompts' KV state, so a new host (a CLI run, a worker, a restart) skips "
                               "prompts an earlier one evaluated; 0 = off."
    )
    local_cpu_second_usd: float = Field(
        0.0000124, description="Price of one CPU-second of local inference (2-vCPU cloud VM, on-demand)."
    )
    prices_file: Path | None = Field(
        None, description="Extra cloud prices (YAML, the shape of the packaged prices.yaml: provider: {model: "
                          "{input, output}} in USD per million tokens), over the packaged ones; a task may use a "
                          "cloud model only when it is priced."
    )
    daily_cloud_budget_usd: float = Field(
        5.0, ge=0, description="What every cloud model call together may cost per UTC day (USD), counted in Postgres "
                               "across the server and every worker; 0 refuses every cloud call. Local models are not "
                               "counted here."
    )
    request_timeout_s: float = Field(60.0, description="Timeout for calls to remote model servers.")
    allow_network: bool = Field(True, description="Allow calls to remote providers (tests turn it off).")

    # Providers (conventional variable names accepted as aliases)
    openai_api_key: SecretStr | None = Field(None, validation_alias=_alias("WORKBENCH_OPENAI_API_KEY", "OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_alias("WORKBENCH_OPENAI_BASE_URL", "OPENAI_BASE_URL"))
    groq_api_key: SecretStr | None = Field(None, validation_alias=_alias("WORKBENCH_GROQ_API_KEY", "GROQ_API_KEY"))
    groq_base_url: str | None = Field(None, validation_alias=_alias("WORKBENCH_GROQ_BASE_URL", "GROQ_BASE_URL"))
    mistral_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("WORKBENCH_MISTRAL_API_KEY", "MISTRAL_API_KEY")
    )
    mistral_base_url: str | None = Field(
        None, validation_alias=_alias("WORKBENCH_MISTRAL_BASE_URL", "MISTRAL_SERVER_URL")
    )
    openai_structured_output: str = Field("json_schema", description="json_schema | json_object_schema | json_object")
    groq_structured_output: str = Field("json_schema", description="json_schema | json_object_schema | json_object")
    mistral_structured_output: str = Field("json_schema", description="json_schema | json_object_schema | json_object")
    ollama_host: str | None = Field(None, validation_alias=_alias("WORKBENCH_OLLAMA_HOST", "OLLAMA_HOST"))

    # Services
    postgres_url: SecretStr | None = Field(None, description="External Postgres; embedded when unset.")
    dask_scheduler: str | None = Field(None, description="External Dask scheduler; LocalCluster when unset.")
    dask_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="How long a client waits to reach an external Dask scheduler, or to get "
                                         "it back once lost; after that the task runner connects anew.")
    pipelines_scheduler: bool = Field(True, description="`workbench serve` fires the cron schedules of pipelines/*.yaml.")
    dask_workers: int = Field(2, description="Worker processes of the LocalCluster.")
    llm_slots: int = Field(1, description="Concurrent local-model generations per cluster.")
    host: str = Field("127.0.0.1", description="Address `workbench serve` binds to.")
    port: int = Field(5006, description="Port of `workbench serve`.")
    api_key: SecretStr | None = Field(
        None, description="Required on every request and WebSocket when set (browsers log in once at /login); "
                          "must be set to bind beyond loopback. Empty counts as unset."
    )
    api_key_name: str = Field(
        "api", min_length=1, description="Who requests carrying WORKBENCH_API_KEY are: the memory owner of the "
                                         "tasks they create (without a key, WORKBENCH_MEMORY_OWNER)."
    )
    allowed_hosts: str = Field(
        "", description="Host names the server answers to besides localhost, 127.0.0.1, ::1 and the bound host, "
                        "comma-separated (e.g. the machine's DNS name behind a proxy); '*' = any."
    )
    allowed_origins: str = Field(
        "", description="Other origins (scheme://host:port) allowed to open WebSockets and send state-changing "
                        "requests, comma-separated; same-origin requests are always allowed."
    )
    offline: bool = Field(False, description="Local-only mode: never call a cloud provider.")
    gateway_policy: Path | None = Field(
        None, description="Gateway policy (routing, failover, retry, breaker, cache, budgets); packaged default when unset."
    )
    chromium: Path = Field(Path("/usr/bin/chromium"), description="Browser for UI tests, screenshots and the "
                                                                  "browser tool.")
    browser_allowed_hosts: str = Field(
        "localhost,127.0.0.1", description="Hosts the web tools reach (the browser tool's page, http_get, "
                                           "http_post), comma-separated (http and https only); every request and "
                                           "redirect hop is checked."
    )
    browser_allow_workbench_api: bool = Field(
        False, description="Let the web tools reach the workbench's own server (WORKBENCH_PORT); off, a page "
                           "or an http tool cannot drive the workbench's API."
    )
    browser_timeout_s: float = Field(15.0, description="Time limit of one browser-tool action (load, click, fill).")
    plugins: str = Field("", description="Modules or .py files every process imports (providers, specialists, "
                                         "tools), comma-separated; Dask workers load them too.")
    agents_file: Path | None = Field(
        None, description="Specialists and Director settings (models, limits, enabled); packaged agents.yaml when unset."
    )
    agent_workspace: Path | None = Field(
        None, description="Directory agents' file tools are confined to; <WORKBENCH_HOME>/workspace when unset."
    )
    mcp_profiles: Path | None = Field(
        None, description="YAML file of MCP client profiles (tools, roots, read_only); `workbench mcp serve` "
                          "uses a built-in read-only profile over the agents' workspace when unset."
    )
    mcp_profile: str = Field("default", description="Profile `workbench mcp serve` runs as (--profile overrides).")
    mcp_servers: Path | None = Field(
        None, description="YAML file of external MCP servers (stdio command or HTTP URL) whose tools specialists may "
                          "use (agents.yaml `tools: [\"mcp:NAME\"]`); <WORKBENCH_HOME>/mcp_servers.yaml when unset."
    )

    # Sandbox (workbench.sandbox): untrusted code never runs without isolation unless asked by name
    sandbox: str = Field(
        "auto", description="auto | bwrap | docker | unsafe-host (unsafe-host = NO isolation at all)."
    )
    sandbox_timeout_s: float = Field(30.0, description="Wall-clock limit of one sandbox run.")
    sandbox_memory_mb: int = Field(512, description="Memory limit of one sandbox run (MiB).")
    sandbox_disk_mb: int = Field(64, description="Size of the sandbox's writable work directory (MiB).")
    sandbox_processes: int = Field(256, description="Processes and threads one sandbox run may have.")
    sandbox_output_bytes: int = Field(1_000_000, description="stdout/stderr kept per stream; the rest is cut.")
    sandbox_cpus: float = Field(1.0, description="CPU share of one sandbox run (cgroup); 0 = unlimited.")
    sandbox_docker_images: dict[str, str] = Field(
        default_factory=dict, description="language -> image for the docker backend (JSON); see sandbox/docker.py."
    )

    # Memory (workbench.memory): past tasks' verified solutions, plans and failure notes, by similarity
    memory: str = Field(
        "auto", description="auto | on | off. auto = on when the embedder (sentence-transformers and the packaged "
                            "all-MiniLM-L6-v2) is installed; a task can still turn it off for itself."
    )
    memory_owner: str = Field(
        "local", description="Whose memory a task reads and writes when it names no owner: entries and the "
                             "execution cache are never shared across owners (unless an entry is scoped shared)."
    )
    memory_min_similarity: float = Field(
        0.6, le=1.0, description="Cosine similarity (0-1) a past entry needs to be given to a model."
    )
    memory_tokens: int = Field(
        600, description="Most tokens of retrieved memory put into one prompt (whole entries, best first)."
    )
    memory_cache: bool = Field(
        True, description="Answer an identical request of the same owner with its stored verified solution "
                          "(a task can opt out)."
    )
    strategy: bool = Field(
        True, description="Let the Code specialist choose its loop's rounds from past outcomes of the same kind "
                          "(workbench.memory.strategy); false: always the configured max_rounds."
    )
    strategy_models: str = Field(
        "", description="Models (comma-separated) the Director may give a subtask that names none, besides "
                        "WORKBENCH_MODEL: the cheapest whose past success rate for that specialist is as good as "
                        "the best's (workbench.memory.strategy); empty: always the default."
    )
    strategy_explore: float = Field(
        0.05, le=0.1, description="Share of strategy choices (0-0.1) that try another setting instead of the best "
                                  "estimate; each choice is logged as a memory event."
    )

    # Dashboards and alerts (dashboards/, workbench/analysis/alerts.py)
    alert_webhook: str | None = Field(
        None, description="URL that alert changes (firing/resolved) are POSTed to as JSON; none when unset."
    )
    alerts_file: Path | None = Field(None, description="Alert rules (YAML); the packaged workbench/alerts.yaml when unset.")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL that `workbench trace --otlp` exports spans to (gen_ai.* attributes)."
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        """WORKBENCH_API_KEY= (empty or blank) must not count as a key: it would protect nothing."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(raw, str) and not raw.strip() else value

    @field_validator("memory")
    @classmethod
    def _memory_mode(cls, value: str) -> str:
        if value not in ("auto", "on", "off"):
            raise ValueError("must be auto, on or off")
        return value

    @field_validator("*")
    @classmethod
    def _not_negative(cls, value: object) -> object:
        """Sizes, limits, timeouts and prices: 0 or more (each field says what 0 means)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"must be 0 or more, not {value}")
        return value

    @property
    def duckdb_path(self) -> Path:
        return self.home / "workbench.duckdb"

    def masked(self) -> dict[str, object]:
        """Effective settings with every secret replaced by a mask (safe to print or log): keys keep their last 4
        characters, a webhook URL its host only, any other URL loses its user, password and query values."""
        from workbench import redact

        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "****" + value.get_secret_value()[-4:] if len(value.get_secret_value()) > 8 else "****"
            elif isinstance(value, str) and name.endswith("webhook"):
                out[name] = redact.webhook(value)
            elif isinstance(value, str) and ("://" in value or "@" in value):
                out[name] = redact.url(value)
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out


def env_names() -> set[str]:
    """Every environment variable Settings reads (used to check docker-compose.yml)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(f"WORKBENCH_{name.upper()}")
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    from pydantic import ValidationError

    from workbench.env_typos import warn_unknown
    from workbench.errors import ConfigError

    warn_unknown(env_names())
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WORKBENCH_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(f"Invalid setting: {problems}. Fix the variable in the environment or .env.") from None


def reload_settings() -> Settings:
    """Forget cached settings (tests change the environment)."""
    get_settings.cache_clear()
    return get_settings()
