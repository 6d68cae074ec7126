#!/usr/bin/env bash
# Idempotent environment bootstrap for mmpose-mpt (see ../shared/env.md for why each step is as it is).
#
#   bash tools/setup_env.sh                 # install / update everything, then print the python used
#   bash tools/setup_env.sh --which-python  # only print the python that the Makefile should use
#
# Environment: the active virtualenv ($VIRTUAL_ENV) or conda env ($CONDA_PREFIX) if there is one,
# otherwise .venv/ in the repository. torch: an already installed torch (e.g. a CUDA build) is kept;
# otherwise $TORCH_SPEC (default torch==2.13.0, the local CPU build on the project's machines).
# mmcv 2.1.0 is built from source once (with its CPU ops; ~7 min on 2 cores) and the wheel is cached in
# $MPT_WHEEL_CACHE (default ~/.cache/mmpose-mpt/wheels). torchvision is never installed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY="$VIRTUAL_ENV/bin/python"
elif [[ -n "${CONDA_PREFIX:-}" ]]; then
    PY="$CONDA_PREFIX/bin/python"
else
    PY="$REPO/.venv/bin/python"
fi
if [[ "${1:-}" == "--which-python" ]]; then
    echo "$PY"
    exit 0
fi

log() { echo "[setup_env] $*" >&2; }
T0=$(date +%s)
CONSTRAINTS="$REPO/requirements/constraints.txt"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
WHEEL_CACHE="${MPT_WHEEL_CACHE:-$HOME/.cache/mmpose-mpt/wheels}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$PY" ]]; then
    log "creating virtualenv $REPO/.venv"
    python3 -m venv "$REPO/.venv"
fi
PIP=("$PY" -m pip install -q -c "$CONSTRAINTS")

# Fast path: nothing changed since the last successful run (requirements, setup.py, python).
STAMP="$REPO/.env_stamp"
FINGERPRINT=$(cat "$REPO"/requirements/*.txt "$REPO/setup.py" "$0" | sha1sum | cut -c1-16)-$("$PY" -c 'import sys; print(sys.version_info[:2])' | tr -d ' ')
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$FINGERPRINT" ]] && "$PY" - <<'EOF' 2>/dev/null
import mmcv, mmcv.ops, mmengine, mmpose, mmdet, smplx, torch, mmpose_mpt  # noqa: F401
import onnx, onnxruntime, onnxscript, trimesh, importlib.util  # noqa: F401
assert importlib.util.find_spec('pyrender')  # not imported: that would bind a GL platform
assert mmcv.__version__ == '2.1.0'
EOF
then
    log "environment up to date ($PY, $(( $(date +%s) - T0 ))s)"
    exit 0
fi

# 1. torch: keep an installed build (CUDA on GPU machines); never torchvision.
if "$PY" -c 'import torch' 2>/dev/null; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed; keeping it"
else
    log "installing $TORCH_SPEC"
    "${PIP[@]}" "$TORCH_SPEC"
fi
"${PIP[@]}" wheel ninja "numpy<2" packaging

# 2. mmcv 2.1.0 with ops, built once per (python, torch) and cached outside the repository.
if ! "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
    KEY=$("$PY" -c 'import sys, torch; print("py%d%d-torch%s" % (sys.version_info[0], sys.version_info[1], torch.__version__.replace("+", "_")))')
    CACHE="$WHEEL_CACHE/$KEY"
    mkdir -p "$CACHE"
    WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)
    if [[ -z "$WHEEL" ]]; then
        log "building mmcv 2.1.0 from source into $CACHE (once; ~7 min on 2 cores)"
        # mmcv 2.1.0's setup.py needs setuptools<70 (only for this build; torch wants >=77 at run time).
        "${PIP[@]}" "setuptools<70"
        # CPU ops only: the project needs no mmcv CUDA op; torch runs the model on the GPU.
        CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "$PY" -m pip wheel -q --no-build-isolation --no-deps -c "$CONSTRAINTS" -w "$CACHE" mmcv==2.1.0
        WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl | head -n1)
    fi
    log "installing $WHEEL"
    "${PIP[@]}" --no-deps "$WHEEL"
fi

# 3. OpenMMLab packages and the plugin's own dependencies.
"${PIP[@]}" -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" \
    -r "$REPO/requirements/render.txt" -r "$REPO/requirements/onnx.txt"
"${PIP[@]}" --no-deps -r "$REPO/requirements/openmmlab.txt"
# pyrender without its PyOpenGL==3.1.0 pin (render.txt installs the PyOpenGL that OSMesa needs)
"${PIP[@]}" --no-deps -r "$REPO/requirements/render_nodeps.txt"
"${PIP[@]}" --no-deps --no-build-isolation -e "$REPO"

if "$PY" -c 'import torchvision' 2>/dev/null; then
    log "note: torchvision is importable in this environment; mmpose-mpt does not need it"
fi
"$PY" - <<'EOF'
import mmcv, mmcv.ops, mmengine, mmpose, mmdet, smplx, torch, mmpose_mpt
print(f'[setup_env] torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmpose {mmpose.__version__}, mmdet {mmdet.__version__}, mmpose_mpt {mmpose_mpt.__version__}')
EOF
echo "$FINGERPRINT" > "$STAMP"
log "done in $(( $(date +%s) - T0 ))s; python: $PY"
