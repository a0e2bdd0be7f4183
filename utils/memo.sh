#!/usr/bin/env bash
# Generated Markdown memo of every spk version and tag (notes, changes, results, lineage).
#   utils/memo.sh                      print it
#   utils/memo.sh exp/report/memo.md   write it to a file
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ./path.sh
if [ $# -gt 1 ]; then
  echo "usage: $0 [OUTPUT.md]" >&2; exit 2
fi
exec vc-report memo ${1:+--out "$1"}
