#!/usr/bin/env bash
# Compare silence-trimming settings on a sample of a spk before fixing a dataset version.
#   utils/explore_thresholds.sh --spk demo -n 8 --thresh_t -100 -70 -60 --min_silence_len 150 300
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ./path.sh
exec vc-explore-thresholds "$@"
