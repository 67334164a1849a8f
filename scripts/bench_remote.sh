#!/usr/bin/env bash
# tercuman against a real OpenAI-compatible engine: starts llama.cpp's server (through
# llama-cpp-python, `pip install 'llama-cpp-python[server]'`, which builds llama.cpp once, ~20
# min) on loopback serving the test GGUF, translates COPIES copies of the sample article (its
# first PARAGRAPHS blocks; 0 = all) in one batch at --concurrency 1, 4 and 8, and the same batch
# with the local engine, and prints articles per minute for each. The test model is a base
# model, so it is driven through /v1/completions with the few-shot prompts
# (openai-completions:URL).
#
#   bash scripts/bench_remote.sh [COPIES=20] [PARAGRAPHS=0] [MODEL=test model]
#
# The server's own settings go in LLAMA_SERVER_ARGS (e.g. "--n_threads 16" on a bigger box).
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}
paragraphs=${2:-0}
model=${3:-$(bash scripts/test-model.sh)}
bin=${TERCUMAN_BIN:-target/release/tercuman}
[ -x "$bin" ] || cargo build --release --locked >&2
python3 -c 'import llama_cpp.server' 2>/dev/null || {
  echo "needs llama-cpp-python's server: pip install 'llama-cpp-python[server]'" >&2; exit 2; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$port" \
  --n_ctx 4096 --model_alias test-model ${LLAMA_SERVER_ARGS:-} > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port/v1"
for _ in $(seq 1 120); do
  curl -sf "$url/models" > /dev/null && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 2; }
  sleep 1
done
mkdir -p "$work/in"
python3 - "$paragraphs" tests/fixtures/pekin-zirvesi.tr.txt > "$work/article.txt" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
blocks = [b for b in open(path, encoding="utf-8").read().split("\n\n") if b.strip()]
print("\n\n".join(blocks[:n] if n else blocks))
PY
for i in $(seq -w 1 "$copies"); do cp "$work/article.txt" "$work/in/a$i.txt"; done

run() { # label, then tercuman's model arguments
  local label=$1; shift
  rm -rf "$work/out"
  local t0=$(date +%s.%N)
  "$bin" translate "$work/in" -o "$work/out" --quiet "$@" || true
  local s=$(echo "$(date +%s.%N) - $t0" | bc)
  local done=$(grep -c '"status":"done"' "$work/out/tercuman-manifest.jsonl" || true)
  local flagged=$(python3 -c 'import json,sys; print(sum(json.loads(l)["flagged_blocks"] for l in open(sys.argv[1])))' "$work/out/tercuman-manifest.jsonl")
  printf '| %s | %d of %d | %.1f | %.2f | %s |\n' "$label" "$done" "$copies" "$s" \
    "$(echo "$done * 60 / $s" | bc -l)" "$flagged"
}
echo "copies=$copies paragraphs=$paragraphs model=$(basename "$model") cores=$(nproc)"
echo "| engine | articles done | wall s | articles/min | blocks flagged |"
echo "|---|---|---|---|---|"
for c in 1 4 8; do
  run "llama.cpp server (llama-cpp-python), --concurrency $c" \
    --model "openai-completions:$url#test-model" --concurrency "$c"
done
kill $server; wait $server 2>/dev/null || true
run "local engine (tercuman)" --model "$model"
