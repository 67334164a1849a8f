#!/usr/bin/env bash
# Batch mode against separate runs, local engine: COPIES copies of a short article (the sample
# article's first PARAGRAPHS blocks) translated in one `tercuman translate DIR -o OUT` run
# (the model loaded once) and in COPIES separate runs, alternating which goes first, ROUNDS times.
# Prints the wall seconds of each and their ratio. Uses a release build and the test model.
#
#   bash scripts/bench_batch.sh [COPIES=20] [PARAGRAPHS=3] [ROUNDS=1] [MODEL=test model]
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-20}
paragraphs=${2:-3}
rounds=${3:-1}
model=${4:-$(bash scripts/test-model.sh)}
bin=${TERCUMAN_BIN:-target/release/tercuman}
[ -x "$bin" ] || cargo build --release --locked >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
python3 - "$paragraphs" tests/fixtures/pekin-zirvesi.tr.txt > "$work/article.txt" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
blocks = [b for b in open(path, encoding="utf-8").read().split("\n\n") if b.strip()]
print("\n\n".join(blocks[:n]))
PY
for i in $(seq -w 1 "$copies"); do cp "$work/article.txt" "$work/in/a$i.txt"; done

batch() {
  rm -rf "$work/out"
  local t0=$(date +%s.%N)
  "$bin" translate "$work/in" -o "$work/out" --model "$model" --quiet
  echo "$(date +%s.%N) - $t0" | bc
}
separate() {
  rm -rf "$work/sep" && mkdir -p "$work/sep"
  local t0=$(date +%s.%N)
  for f in "$work"/in/*.txt; do
    "$bin" translate "$f" -o "$work/sep/$(basename "$f" .txt).en.txt" --model "$model" --quiet
  done
  echo "$(date +%s.%N) - $t0" | bc
}
echo "copies=$copies paragraphs=$paragraphs model=$(basename "$model")"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then b=$(batch); s=$(separate); else s=$(separate); b=$(batch); fi
  # The two must agree: the same model, the same articles, greedy decoding.
  for f in "$work"/out/*.en.txt; do cmp -s "$f" "$work/sep/$(basename "$f")" || echo "DIFFERS: $(basename "$f")"; done
  printf 'round %d: one batch run %.1f s, %d separate runs %.1f s, separate/batch %.3f\n' \
    "$r" "$b" "$copies" "$s" "$(echo "$s / $b" | bc -l)"
done
