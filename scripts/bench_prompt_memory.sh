#!/usr/bin/env bash
# Peak memory against prompt length: `tercuman bench` on prompts of about 512, 2048 and 4096
# tokens (the sample article's words repeated), 16 tokens generated, for each GGUF model given,
# and each tercuman binary given in BINS (space-separated; default target/release/tercuman),
# one fresh process per run. Prints a Markdown table: prompt tokens, peak RSS, and its ratio to
# the shortest prompt's.
#
#   BINS="old/tercuman target/release/tercuman" bash scripts/bench_prompt_memory.sh MODEL.gguf [MODEL2.gguf ...]
#
# WORDS (default "260 1030 2060") sets the prompt lengths in words. Not run in CI (minutes per
# model on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: bash scripts/bench_prompt_memory.sh MODEL.gguf [...]" >&2; exit 2; }
bins=${BINS:-target/release/tercuman}
threads=${THREADS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Words per prompt: Turkish news text runs at about 2 tokens per word on these vocabularies.
sizes=${WORDS:-260 1030 2060}
for words in $sizes; do
  python3 - "$words" tests/fixtures/pekin-zirvesi.tr.txt > "$work/p$words.txt" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
words = open(path, encoding="utf-8").read().split()
print(" ".join((words * (n // len(words) + 1))[:n]))
PY
done
echo "| model | binary | prompt tokens | peak RSS MB | vs shortest |"
echo "|---|---|---|---|---|"
for model in "$@"; do
  for bin in $bins; do
    first=
    for words in $sizes; do
      json=$("$bin" bench --model "$model" --prompt-file "$work/p$words.txt" --gen-tokens 16 \
        --threads "$threads" --json)
      read -r tokens rss < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["prompt_tokens"], r["peak_rss_bytes"])' "$json")
      first=${first:-$rss}
      printf '| %s | %s | %d | %.0f | %.2f× |\n' "$(basename "$model")" "$bin" "$tokens" \
        "$(echo "$rss / 1000000" | bc -l)" "$(echo "$rss / $first" | bc -l)"
    done
  done
done
