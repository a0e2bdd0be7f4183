# Source this file to use vc_toolkit from a shell: it creates/updates the local
# virtual environment on first use (utils/install.sh) and puts it on PATH.
#   . ./path.sh
VC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export VC_ROOT
"${VC_ROOT}/utils/install.sh" ${VC_INSTALL_ARGS:-} || return 1 2>/dev/null || exit 1
export PATH="${VC_VENV:-${VC_ROOT}/.venv}/bin:${VC_ROOT}/utils:${PATH}"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:pkg_resources is deprecated:UserWarning}"
# One BLAS/OpenMP thread per process unless the user says otherwise: stage 1 runs
# --nj worker processes and training sets its own torch thread count.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
