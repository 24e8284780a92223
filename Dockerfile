# Image for the scaled-out deployment in docker-compose.yml (app, Dask scheduler and workers).
# Same two-command setup as a laptop: the Makefile installs everything from the lock file.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git make \
        bubblewrap nodejs npm default-jdk-headless junit5 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
ENV WORKBENCH_MODELS_DIR=/models WORKBENCH_HOME=/data PYTHON=python3.11
RUN make venv toolchain && ln -s /app/.venv/bin/workbench /usr/local/bin/workbench \
    && ln -s /app/.venv/bin/dask /usr/local/bin/dask
# Weights are pulled at first start into the /models volume (verified by sha256), not baked into the image.
CMD ["sh", "-c", "workbench models pull qwen2.5-coder-1.5b && workbench serve --host 0.0.0.0"]
