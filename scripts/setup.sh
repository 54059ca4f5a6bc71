#!/usr/bin/env bash
# One command sets everything up on a fresh machine: a virtual environment in .venv with CPU PyTorch (pinned so
# pip never pulls a multi-GB CUDA build), intuitor and its test tools, plus the system tools the tests use
# (bubblewrap for the code sandbox, Chromium for the HTML report test) where apt is available.
# On a GPU machine: PIP_TORCH="torch" bash scripts/setup.sh, then pip install -e ".[vllm]".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP_TORCH=${PIP_TORCH:-torch==2.13.0}

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "$PIP_TORCH" -e ".[dev]"
echo "intuitor is installed in .venv: try .venv/bin/intuitor --help"
