#!/usr/bin/env bash
# Install the test extras into .venv (first run only; utils/install.sh --test also installs the
# Debian package postgresql when missing), lint, and run the whole test suite.
# Extra arguments go to pytest, e.g. ./test.sh -k config -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
VC_INSTALL_ARGS=--test . ./path.sh
echo "[test] ruff check + format check"
ruff check .
ruff format --check .
echo "[test] pytest"
pytest "$@"
