#!/usr/bin/env bash
# vc_toolkit recipe driver: data -> features -> training -> conversion -> evaluation.
# Run ./run.sh --help for stages and options. With no arguments it installs what
# is missing into .venv and runs the demo recipe end to end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# ---- options (each can be given as --name value) ----
stage=0            # first stage: a number (0-4) or a named stage
stop_stage=4       # last numbered stage
spk=""             # dataset version conf/spk/<spk>.yaml (default: the tag's spk)
tag=demo_conv      # experiment conf/tag/<tag>.yaml
nj=2               # parallel jobs for stages 0-1
device=auto        # auto, cpu, cuda, cuda:N
force=false        # redo finished work / accept a changed config (rebuilds)
checkpoint=best    # stages 3, 4, pack: best, latest, epochN
resume_from=""     # stage 2: continue from best or epochN instead of latest
with_pretrain=false  # stage 2: train untrained pretrain ancestors first
ngpu=0             # stage 2: GPUs for DDP (0: single process)
nnodes=1           # stage 2: machines for DDP
node_rank=0        # stage 2: rank of this machine
master_addr=localhost  # stage 2: address of the rank-0 machine
master_port=29500  # stage 2: port of the rank-0 machine
voc=demo_hifigan   # voc stage: conf/voc/<voc>.yaml
study=demo         # optuna stages: conf/optuna/<study>.yaml
trial=best         # optuna_export: trial number or best
n_workers=1        # optuna: parallel worker processes on this machine
tags=""            # report: tag pattern (glob) for the leaderboard
dry_run=false      # print the commands of each stage without running them

_po_options="stage stop_stage spk tag voc nj device force checkpoint resume_from with_pretrain ngpu nnodes node_rank master_addr master_port study trial n_workers tags dry_run"
help_message="Usage: ./run.sh [options]

Stages (numbered stages run from --stage to --stop_stage):
  0  data preparation   conf/spk/<spk>.yaml -> data/<spk>/{train,dev,eval}/{src,tgt}.scp
  1  feature extraction data/<spk>          -> dump/<spk>/ (trimmed mel/F0/energy, DTW durations, stats)
  2  training           conf/tag/<tag>.yaml -> exp/<tag>/ (checkpoints, TensorBoard, summary.json)
  3  conversion         exp/<tag>           -> exp/<tag>/convert/<checkpoint>/{dev,eval}/*.wav (text tags: synthesis)
  4  evaluation         converted speech    -> exp/<tag>/eval/<checkpoint>/ + leaderboard row (text tags: + duration error)
Named stages (run alone):
  voc            train a vocoder conf/voc/<voc>.yaml -> exp/voc/<voc>/ (HiFi-GAN for the spk)
  pack           self-contained model directory exp/<tag>/pack/<checkpoint>/
  optuna         hyper-parameter study conf/optuna/<study>.yaml -> exp/optuna/<study>/
  optuna_export  write trial --trial of --study as conf/tag/<tag>.yaml
  report         leaderboard of all tags (or --tags 'N2C_*') and the experiment memo

Options (defaults in brackets):
  --stage S            first stage, number or name [${stage}]
  --stop_stage N       last numbered stage [${stop_stage}]
  --spk NAME           dataset version [the tag's spk]
  --tag NAME           experiment [${tag}]
  --voc NAME           vocoder experiment for --stage voc [${voc}]
  --nj N               parallel jobs for stages 0-1 [${nj}]
  --device D           auto, cpu, cuda, cuda:N [${device}]
  --force              redo finished stages; accept a changed config (starts over)
  --checkpoint C       best, latest or epochN for stages 3, 4 and pack [${checkpoint}]
  --resume_from C      stage 2: continue from best or epochN instead of latest
  --with_pretrain      stages 2 and voc: first prepare (stages 0-1) and train the pretrain
                       chain if it is not trained
  --ngpu N             stage 2: GPUs for DDP on this machine [${ngpu}]
  --nnodes N --node_rank R --master_addr A --master_port P   stage 2: multi-node DDP
  --study NAME         optuna study [${study}]
  --trial N|best       optuna_export: which trial [${trial}]
  --n_workers N        optuna: worker processes on this machine [${n_workers}]
  --tags PATTERN       report: glob of tags [all]
  --dry_run            print each stage's command instead of running it
  -h, --help           this text

Examples:
  ./run.sh                                  # demo end to end (stages 0-4)
  ./run.sh --stage 1 --stop_stage 1 --spk demo
  ./run.sh --stage 2 --tag demo_ar
  ./run.sh --tag demo_small_ft --with_pretrain   # pretrain on demo_multi, fine-tune on demo_small
  ./run.sh --stage voc --voc demo_hifigan   # train a vocoder for the demo spk
  ./run.sh --stage optuna --study demo
  ./run.sh --stage optuna_export --study demo --trial best --tag demo_tuned
  ./run.sh --stage report"

. utils/parse_options.sh

if [ "${dry_run}" = true ]; then
  export PATH="${PWD}/.venv/bin:${PATH}"
else
  . ./path.sh
fi

log() { printf '\n=== %s\n' "$*"; }
# Print a stage's command, then run it (unless --dry_run).
x() { printf '+ %s\n' "$*"; [ "${dry_run}" = true ] || "$@"; }
bool_flag() { [ "$2" = true ] && printf -- '--%s' "$1" || true; }
force_flag="$(bool_flag force "${force}")"

if [ -z "${spk}" ] && [[ ! "${stage}" =~ ^(optuna|optuna_export|report|voc)$ ]]; then
  spk="$(vc-config get --tag "${tag}" spk)"
fi

run_stage() {
  case "$1" in
    0)
      log "stage 0: data preparation (spk ${spk}) -> data/${spk}/"
      x vc-prepare-data --spk "${spk}" --nj "${nj}" ${force_flag} ;;
    1)
      log "stage 1: feature extraction (spk ${spk}) -> dump/${spk}/"
      x vc-preprocess --spk "${spk}" --nj "${nj}" ${force_flag} ;;
    2)
      if [ "${with_pretrain}" = true ]; then
        # the pretrain ancestors train first, so their spks need stages 0-1 too
        while read -r parent parent_spk; do
          [ -n "${parent}" ] || continue
          log "stages 0-1 for pretrain ancestor ${parent} (spk ${parent_spk}) -> dump/${parent_spk}/"
          x vc-prepare-data --spk "${parent_spk}" --nj "${nj}"
          x vc-preprocess --spk "${parent_spk}" --nj "${nj}"
        done < <(vc-config chain --tag "${tag}")
      fi
      log "stage 2: training (tag ${tag}) -> exp/${tag}/"
      ddp=()
      if [ "${ngpu}" != 0 ] || [ "${nnodes}" != 1 ]; then
        ddp=(--ngpu "${ngpu}" --nnodes "${nnodes}" --node_rank "${node_rank}"
             --master_addr "${master_addr}" --master_port "${master_port}")
      fi
      x vc-train --tag "${tag}" --device "${device}" ${force_flag} \
        ${resume_from:+--resume_from "${resume_from}"} \
        $(bool_flag with_pretrain "${with_pretrain}") "${ddp[@]}" ;;
    3)
      log "stage 3: conversion (tag ${tag}, checkpoint ${checkpoint}) -> exp/${tag}/convert/${checkpoint}/"
      x vc-convert --tag "${tag}" --checkpoint "${checkpoint}" --device "${device}" ${force_flag} ;;
    4)
      log "stage 4: evaluation (tag ${tag}, checkpoint ${checkpoint}) -> exp/${tag}/eval/${checkpoint}/"
      x vc-evaluate --tag "${tag}" --checkpoint "${checkpoint}" --nj "${nj}" ${force_flag}
      x vc-report leaderboard --tags "${tag}" ;;
    voc)
      log "voc: vocoder ${voc} -> exp/voc/${voc}/"
      ddp=()
      if [ "${ngpu}" != 0 ] || [ "${nnodes}" != 1 ]; then
        ddp=(--ngpu "${ngpu}" --nnodes "${nnodes}" --node_rank "${node_rank}"
             --master_addr "${master_addr}" --master_port "${master_port}")
      fi
      x vc-train-vocoder --voc "${voc}" --device "${device}" --nj "${nj}" ${force_flag} \
        ${resume_from:+--resume_from "${resume_from}"} \
        $(bool_flag with_pretrain "${with_pretrain}") "${ddp[@]}" ;;
    pack)
      log "pack: tag ${tag}, checkpoint ${checkpoint} -> exp/${tag}/pack/${checkpoint}/"
      x vc-pack --tag "${tag}" --checkpoint "${checkpoint}" ;;
    optuna)
      log "optuna: study ${study} -> exp/optuna/${study}/"
      x vc-tune run --study "${study}" --n_workers "${n_workers}" --device "${device}" ;;
    optuna_export)
      log "optuna_export: study ${study}, trial ${trial} -> conf/tag/${tag}.yaml"
      x vc-tune export --study "${study}" --trial "${trial}" --tag "${tag}" ${force_flag} ;;
    report)
      log "report: leaderboard and experiment memo -> exp/report/"
      x vc-report leaderboard ${tags:+--tags "${tags}"} --out exp/report
      x vc-report memo --out exp/report/memo.md ;;
    *)
      echo "run.sh: unknown stage '$1'; see --help" >&2; exit 2 ;;
  esac
}

if [[ "${stage}" =~ ^[0-9]+$ ]]; then
  if ! [[ "${stop_stage}" =~ ^[0-9]+$ ]]; then
    echo "run.sh: --stop_stage must be a number, got '${stop_stage}'" >&2; exit 2
  fi
  if [ "${stage}" -gt 4 ] || [ "${stop_stage}" -lt "${stage}" ]; then
    echo "run.sh: nothing to run for --stage ${stage} --stop_stage ${stop_stage} (stages 0-4)" >&2
    exit 2
  fi
  for s in 0 1 2 3 4; do
    if [ "${s}" -ge "${stage}" ] && [ "${s}" -le "${stop_stage}" ]; then run_stage "${s}"; fi
  done
else
  run_stage "${stage}"
fi
log "done"
