#!/usr/bin/env bash
# Leaderboard of the experiments in exp/ (one row per tag).
#   utils/leaderboard.sh                         all tags, aligned table
#   utils/leaderboard.sh --tags 'N2C_*' --sort mcd
#   utils/leaderboard.sh --format md --out exp/report
# Every option is passed to `vc-report leaderboard` (see vc-report --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ./path.sh
exec vc-report leaderboard "$@"
