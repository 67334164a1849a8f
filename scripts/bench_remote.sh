#!/usr/bin/env bash
# tercuman against a real OpenAI-compatible engine: llama.cpp's own server (`llama-server`,
# C++) on loopback serving the test GGUF with N parallel slots and continuous batching
# (`-np N -cb`), restarted for each N in 1, 4 and 8 with tercuman's --concurrency N; then the
# same batch with tercuman's local engine. Prints articles per minute for each, as a Markdown
# table. The batch is COPIES copies of the sample article (its first PARAGRAPHS blocks; 0 =
# all). The test model is a base model, so it is driven through /v1/completions with the
# few-shot prompts (openai-completions:URL).
#
#   LLAMA_SERVER=/path/to/llama-server bash scripts/bench_remote.sh [COPIES=20] [PARAGRAPHS=0] [MODEL=test model]
#
# Building llama-server (no pre-built binary is on PyPI or Debian; ~35 min on 2 cores): take
# llama.cpp's sources (e.g. the copy vendored in llama-cpp-python's sdist, `pip download
# --no-binary :all: llama-cpp-python`, under vendor/llama.cpp), then
#   cmake -S . -B build -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF && cmake --build build --target llama-server
#
# THREADS (default: all cores) goes to both the server (-t) and the local engine (--threads);
# CTX_PER_SLOT (default 4096) is each slot's context; extra server flags go in
# LLAMA_SERVER_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}
paragraphs=${2:-0}
model=${3:-$(bash scripts/test-model.sh)}
threads=${THREADS:-$(nproc)}
ctx=${CTX_PER_SLOT:-4096}
bin=${TERCUMAN_BIN:-target/release/tercuman}
server_bin=${LLAMA_SERVER:-$(command -v llama-server || true)}
[ -x "$bin" ] || cargo build --release --locked >&2
[ -n "$server_bin" ] && [ -x "$server_bin" ] || {
  echo "needs llama.cpp's llama-server: set LLAMA_SERVER or put it on PATH (how to build it: top of this script)" >&2
  exit 2
}
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT

start_server() { # parallel slots
  local np=$1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$server_bin" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" \
    -c $((ctx * np)) -np "$np" -cb --alias test-model ${LLAMA_SERVER_ARGS:-} \
    > "$work/server-$np.log" 2>&1 &
  server=$!
  url="http://127.0.0.1:$port/v1"
  for _ in $(seq 1 120); do
    curl -sf "$url/models" > /dev/null && return 0
    kill -0 $server 2>/dev/null || { cat "$work/server-$np.log" >&2; exit 2; }
    sleep 1
  done
  echo "llama-server did not come up in 120 s" >&2
  exit 2
}

stop_server() {
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
  server=
}

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
  local t0 s done flagged
  t0=$(date +%s.%N)
  "$bin" translate "$work/in" -o "$work/out" --quiet "$@" || true
  s=$(echo "$(date +%s.%N) - $t0" | bc)
  done=$(grep -c '"status":"done"' "$work/out/tercuman-manifest.jsonl" || true)
  flagged=$(python3 -c 'import json,sys; print(sum(json.loads(l)["flagged_blocks"] for l in open(sys.argv[1])))' "$work/out/tercuman-manifest.jsonl")
  printf '| %s | %d of %d | %.1f | %.2f | %s |\n' "$label" "$done" "$copies" "$s" \
    "$(echo "$done * 60 / $s" | bc -l)" "$flagged"
  cp -r "$work/out" "$work/out-$(echo "$label" | tr -c 'a-z0-9' '_')"
}

echo "copies=$copies paragraphs=$paragraphs words/article=$(wc -w < "$work/article.txt") model=$(basename "$model") threads=$threads cores=$(nproc) server=$("$server_bin" --version 2>&1 | grep -m1 version || true)"
echo "| engine | articles done | wall s | articles/min | blocks flagged |"
echo "|---|---|---|---|---|"
for c in 1 4 8; do
  start_server "$c"
  run "llama-server -np $c -cb, --concurrency $c" \
    --model "openai-completions:$url#test-model" --concurrency "$c"
  stop_server
done
run "local engine (tercuman)" --model "$model" --threads "$threads"
