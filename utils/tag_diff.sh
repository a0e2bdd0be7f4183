#!/usr/bin/env bash
# Everything that differs between two experiments: resolved configs, spk configs and
# input files, features fingerprints, pretrain lineage, code commit, results.
#   utils/tag_diff.sh N2C_4 N2C_18
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 TAG_A TAG_B" >&2; exit 2
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ./path.sh
exec vc-report diff "$1" "$2"
