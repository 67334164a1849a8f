#!/usr/bin/env bash
# Runs every model card on its real files: for each model, downloads it from the hub (through
# tercuman's own client, into the Hugging Face cache), translates the sample article with it,
# and records model, revision (the commit the files came from), each file's size and sha256,
# the wall time, and the check results of the output (block count, findings by kind, flags).
#
#   bash scripts/check-real-models.sh [--out DIR] [--article FILE] [MODEL...]
#
# MODEL: a card name or an hf:OWNER/REPO/FILE.gguf spec; default: every card in models/.
# Writes DIR/report.jsonl (one JSON object per model), DIR/report.md (the same as a table) and
# DIR/MODEL.json (tercuman's JSON output); DIR defaults to real-models-report/. A model that
# fails to download or to run is recorded with its error, and the next one is tried; the exit
# status is 1 if any failed.
#
# Needs a machine that reaches the hub (HF_ENDPOINT, HF_TOKEN for the gated Gemma cards: accept
# the licence on their hub pages first), python3, and disk for the models (about 15 GB for all).
# TERCUMAN=PATH uses that binary instead of building a release one; TERCUMAN_ARGS adds options
# to every translate run (e.g. "--threads 8"). CI runs this script unchanged against the
# stand-in hub (scripts/stand-in-hub.py serving the tiny fixtures; tests/it/real_models.rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=real-models-report
article="$root/tests/fixtures/pekin-zirvesi.tr.txt"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --article) article=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    --*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  for card in "$root"/models/*.toml; do models+=("$(basename "$card" .toml)"); done
fi
[ -f "$article" ] || { echo "error: no article at $article (pass --article FILE)" >&2; exit 2; }

if [ -z "${TERCUMAN:-}" ]; then
  (cd "$root" && cargo build --release --locked >&2)
  TERCUMAN="${CARGO_TARGET_DIR:-$root/target}/release/tercuman"
fi
mkdir -p "$out"
: > "$out/report.jsonl"
failed=0

# One JSON line for a model, from what the steps below left in files (python3 does the JSON).
record() { # model status error_file fetched_file output_json wall_seconds
  python3 - "$@" <<'PY' >> "$out/report.jsonl"
import json, os, re, sys
model, status, err_file, fetched, output, wall = sys.argv[1:7]
rec = {"model": model, "status": status, "wall_seconds": float(wall) if wall else None}
files, revisions = [], set()
if os.path.exists(fetched):
    for line in open(fetched, encoding="utf-8"):
        name, path, size, sha = line.rstrip("\n").split("\t")
        m = re.search(r"/snapshots/([0-9a-f]{40})/", path)
        if m:
            revisions.add(m.group(1))
        files.append({"path": os.path.basename(path), "size": int(size), "sha256": sha})
rec["revision"] = ",".join(sorted(revisions)) or None
rec["files"] = files
if os.path.exists(err_file) and status != "ok":
    lines = [l for l in open(err_file, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
    rec["error"] = lines[-1] if lines else None
if status == "ok":
    doc = json.load(open(output, encoding="utf-8"))
    kinds, flags, flagged = {}, {}, 0
    for block in doc["blocks"]:
        if block.get("findings"):
            flagged += 1
        for f in block.get("findings") or []:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
        for f in block.get("flags") or []:
            flags[f] = flags.get(f, 0) + 1
    rec["architecture"] = doc["model"].get("architecture")
    rec["blocks"] = len(doc["blocks"])
    rec["blocks_flagged"] = flagged
    rec["findings"] = dict(sorted(kinds.items()))
    rec["flags"] = dict(sorted(flags.items()))
    rec["first_block"] = doc["blocks"][0]["text"][:200] if doc["blocks"] else ""
print(json.dumps(rec, ensure_ascii=False))
PY
}

for model in "${models[@]}"; do
  slug=$(printf '%s' "$model" | tr -c 'A-Za-z0-9._-' '_')
  err="$out/$slug.stderr"; fetched="$out/$slug.files"; output="$out/$slug.json"
  rm -f "$err" "$fetched" "$output"
  echo "== $model" >&2
  if ! "$TERCUMAN" models fetch "$model" > "$out/$slug.fetch" 2> "$err"; then
    record "$model" "fetch failed" "$err" "$fetched" "$output" ""; failed=1; continue
  fi
  while IFS=$'\t' read -r name path; do
    printf '%s\t%s\t%s\t%s\n' "$name" "$path" "$(stat -L -c %s "$path")" \
      "$(sha256sum "$path" | cut -d' ' -f1)" >> "$fetched"
  done < "$out/$slug.fetch"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # TERCUMAN_ARGS is a list of options
  if "$TERCUMAN" translate "$article" --model "$model" --offline --format json \
       -o "$output" ${TERCUMAN_ARGS:-} 2>> "$err"; then
    status=ok
  else
    status="translate failed"; failed=1
  fi
  wall=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" "$start" "$(date +%s.%N)")
  record "$model" "$status" "$err" "$fetched" "$output" "$wall"
done

python3 - "$out/report.jsonl" "$article" > "$out/report.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
print(f"# Real-model check\n\nArticle: `{sys.argv[2]}`\n")
print("| model | status | revision | files (size, sha256) | wall s | blocks flagged | findings | flags |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    files = "<br>".join(f"`{f['path']}` {f['size']:,} B `{f['sha256']}`" for f in r["files"])
    findings = ", ".join(f"{k} {v}" for k, v in r.get("findings", {}).items()) or "-"
    flags = ", ".join(f"{k} {v}" for k, v in r.get("flags", {}).items()) or "-"
    flagged = f"{r['blocks_flagged']} of {r['blocks']}" if "blocks" in r else "-"
    status = r["status"] + (f": {r['error']}" if r.get("error") else "")
    print(f"| {r['model']} | {status} | `{r['revision'] or '-'}` | {files or '-'} | {r['wall_seconds'] or '-'} | {flagged} | {findings} | {flags} |")
PY
echo "report: $out/report.md, $out/report.jsonl" >&2
exit $failed
