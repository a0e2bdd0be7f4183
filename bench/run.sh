#!/usr/bin/env bash
# Speed benchmark of vc_toolkit: preprocessing, batching, training, conversion, memory.
#
# Usage: ./bench/run.sh [--quick] [more options of bench/bench.py, see --help]
#   --quick   fewer repetitions and variants (under 2 minutes on a 2-core CPU)
#
# Installs the benchmark extras (requirements/bench.txt) into the venv once: a stamp
# in .venv records the hash of that file, and nothing is installed while it matches.
# Results: bench/results/<YYYY-MM-DD>-<host>.{json,md}; the Markdown table is printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' ;;
esac
# shellcheck source=../path.sh
. "${root}/path.sh"

venv="${VC_VENV:-${root}/.venv}"
lock="${root}/requirements/bench.txt"
want="$(sha256sum < "${lock}" | cut -c1-16)"
if [ "$(cat "${venv}/.vc_bench" 2>/dev/null || true)" != "${want}" ]; then
  echo "[install] installing benchmark extras (requirements/bench.txt)"
  "${venv}/bin/python" -m pip --disable-pip-version-check install -q ${PIP_EXTRA_ARGS:-} -r "${lock}"
  echo "${want}" > "${venv}/.vc_bench"
fi

export TQDM_DISABLE=1
exec "${venv}/bin/python" "${root}/bench/bench.py" "$@"
