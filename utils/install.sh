#!/usr/bin/env bash
# Create or update the local virtual environment (.venv) from the pinned lock files.
#
# Usage: utils/install.sh [--test]
#   --test   also install the test extras (requirements/test.txt) and, when missing, the
#            Debian package postgresql (the PostgreSQL storage test starts a throw-away
#            server from it; as root or with password-less sudo, else that test is skipped)
#
# Re-running is a fast no-op: a stamp in .venv records the hash of the lock files
# that were installed, and nothing is done while it matches.
# Environment:
#   VC_PYTHON        Python 3.11 interpreter to build the venv with (default: python3.11, python3)
#   VC_VENV          venv location (default: <repo>/.venv)
#   PIP_EXTRA_ARGS   extra arguments for pip install (e.g. an --extra-index-url for a CPU torch build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VC_VENV:-${root}/.venv}"
with_test=false
case "${1:-}" in
  --test) with_test=true ;;
  "") ;;
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install.sh: unknown option '$1' (use --test or nothing)" >&2; exit 2 ;;
esac

find_python() {
  for cand in "${VC_PYTHON:-}" python3.11 python3; do
    [ -n "${cand}" ] || continue
    if command -v "${cand}" >/dev/null 2>&1 && \
       "${cand}" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "${cand}"; return 0
    fi
  done
  return 1
}

stamp_of() {
  cat "$@" "${root}/pyproject.toml" | sha256sum | cut -c1-16
}

runtime_lock="${root}/requirements/runtime.txt"
test_lock="${root}/requirements/test.txt"

if [ ! -x "${venv}/bin/python" ]; then
  py="$(find_python)" || {
    echo "install.sh: Python 3.11 not found; install it or point VC_PYTHON at a 3.11 interpreter" >&2
    exit 1
  }
  echo "[install] creating virtual environment ${venv} with $(${py} --version)"
  "${py}" -m venv "${venv}"
fi

pip=("${venv}/bin/python" -m pip --disable-pip-version-check)
want_runtime="$(stamp_of "${runtime_lock}")"
if [ "$(cat "${venv}/.vc_runtime" 2>/dev/null || true)" != "${want_runtime}" ]; then
  echo "[install] installing pinned runtime dependencies (requirements/runtime.txt); first time takes a few minutes"
  # setuptools<81 first: pyworld 0.3.5 imports pkg_resources.
  "${pip[@]}" install -q ${PIP_EXTRA_ARGS:-} "setuptools==80.10.2" "wheel==0.48.0"
  "${pip[@]}" install -q ${PIP_EXTRA_ARGS:-} -r "${runtime_lock}"
  "${pip[@]}" install -q --no-deps --no-build-isolation -e "${root}"
  echo "${want_runtime}" > "${venv}/.vc_runtime"
  echo "[install] runtime ready"
fi

# The PostgreSQL server of tests/test_tune_postgres.py (initdb and pg_ctl of the Debian package).
ensure_postgresql() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "[install] PostgreSQL server not found and not root: its test will be skipped" \
        "(apt-get install postgresql)" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "[install] PostgreSQL server not found and no apt-get: its test will be skipped" >&2
    return 0
  fi
  echo "[install] installing the Debian package postgresql (for the PostgreSQL storage test)"
  if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
       >/dev/null 2>&1; then
    echo "[install] could not install postgresql: its test will be skipped" >&2
  fi
}

if ${with_test}; then
  want_test="$(stamp_of "${test_lock}")"
  if [ "$(cat "${venv}/.vc_test" 2>/dev/null || true)" != "${want_test}" ]; then
    echo "[install] installing test extras (requirements/test.txt)"
    "${pip[@]}" install -q ${PIP_EXTRA_ARGS:-} -r "${test_lock}"
    echo "${want_test}" > "${venv}/.vc_test"
  fi
  ensure_postgresql
fi
