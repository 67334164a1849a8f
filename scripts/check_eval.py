#!/usr/bin/env python3
"""Measures `tercuman check` on human translations: per kind of finding, the share of clean
reference lines it flags (false alarms) and its recall on corrupted ones (scripts/corrupt.py).

For each test set (line-aligned Turkish/English human translations) and each kind:
  - clean: `tercuman check SET.tr SET.en --format json`; the share of lines with a finding of
    that kind;
  - recall: corrupt.py puts that kind of error into every line where it applies; the share of
    those lines (its manifest) where the check reports that kind.

    python3 scripts/check_eval.py --bin target/release/tercuman --eval ../shared/eval
    python3 scripts/check_eval.py --sets newstest2018 --limit 300 --markdown

The checks were tuned on newstest2017 only; report newstest2018 and FLORES devtest.
Python standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["number", "name", "invented_name", "omission", "addition", "untranslated",
         "repetition", "quote"]


def check(binary, source, translation):
    """Per line, the set of kinds `tercuman check` reports."""
    done = subprocess.run([binary, "check", "--format", "json", "--quiet", source, translation],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"tercuman check failed ({done.returncode}): {done.stderr}")
    report = json.loads(done.stdout)
    return [{f["kind"] for f in b["findings"]} for b in report["blocks"]]


def head(path, n, out_dir):
    """The first n lines of path (all when n is 0), as a file in out_dir."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if n:
        lines = lines[:n]
    out = os.path.join(out_dir, os.path.basename(path))
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return out


def measure(binary, eval_dir, name, limit, seed, work):
    src = head(os.path.join(eval_dir, f"{name}.tr"), limit, work)
    ref = head(os.path.join(eval_dir, f"{name}.en"), limit, work)
    clean = check(binary, src, ref)
    rows = {}
    for kind in KINDS:
        flagged = sum(kind in k for k in clean) / len(clean)
        out = os.path.join(work, kind)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "corrupt.py"),
                        "--source", src, "--reference", ref, "--kind", kind,
                        "--seed", str(seed), "--out", out], check=True)
        stem = os.path.splitext(os.path.basename(ref))[0]
        with open(os.path.join(out, f"{stem}.{kind}.jsonl"), encoding="utf-8") as f:
            corrupted = [json.loads(line)["line"] for line in f if line.strip()]
        found = check(binary, src, os.path.join(out, f"{stem}.{kind}.en"))
        recall = sum(kind in found[i] for i in corrupted) / max(len(corrupted), 1)
        rows[kind] = (flagged, recall, len(corrupted))
    return len(clean), rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tercuman"))
    p.add_argument("--eval", default=os.path.join(ROOT, "..", "shared", "eval"))
    p.add_argument("--sets", nargs="+", default=["newstest2018", "flores200-devtest"])
    p.add_argument("--limit", type=int, default=0, help="first N lines of each set (0: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args()
    results = {}
    for name in args.sets:
        with tempfile.TemporaryDirectory(prefix="check-eval-") as work:
            results[name] = measure(args.bin, args.eval, name, args.limit, args.seed, work)
    if args.markdown:
        head_row = " | ".join(f"{n} clean flagged | {n} recall" for n in args.sets)
        print(f"| kind | {head_row} |")
        print("|---|" + "---|---|" * len(args.sets))
        for kind in KINDS:
            cells = []
            for name in args.sets:
                flagged, recall, n = results[name][1][kind]
                cells.append(f"{100 * flagged:.2f}% | {recall:.3f} ({n})")
            print(f"| {kind} | {' | '.join(cells)} |")
        print()
        print(", ".join(f"{n}: {results[n][0]} lines" for n in args.sets))
    else:
        print(json.dumps({n: {"lines": r[0], "kinds": {k: {"clean_flagged": v[0], "recall": v[1],
                                                             "corrupted": v[2]}
                                                         for k, v in r[1].items()}}
                          for n, r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
