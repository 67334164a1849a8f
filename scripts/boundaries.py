#!/usr/bin/env python3
"""Measures where the chunker (src/text/chunk.rs) cuts Turkish paragraphs into sentences.

Paragraphs are made by joining N consecutive lines of a line-aligned evaluation file with one
space; the line joins stand for the true sentence ends (roughly: a line can itself hold several
sentences, so a cut inside a line is counted as "extra", not as wrong, and a sample of them is
printed to check by eye). A small binary, built here with plain `rustc` (std only, no cargo)
around the chosen chunk.rs, reads the paragraphs on stdin and prints, for each:

- every boundary `sentence_boundaries` finds, with its weak flag (inside a quotation);
- the chunk starts of `chunk(.., Unit::WholeSentence, ..)`, the path the Marian engine
  (src/translate/marian.rs) takes, with a budget no news paragraph reaches, so only sentence cuts show.

For each path the script reports recall (true joins that are cut), the extra cuts inside lines,
precision if every extra cut were wrong, and how many cuts fall inside quotations.

Python stdlib only; needs `rustc` and, for `--chunk git:REV`, git:
    python3 scripts/boundaries.py                      # the working tree's chunk.rs
    python3 scripts/boundaries.py --chunk git:3fe1600  # the one before the quotation fix
    python3 scripts/boundaries.py --sets newstest2017 --samples 20
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL = os.path.join(os.path.dirname(ROOT), "shared", "eval")

MAIN_RS = r"""
#[allow(dead_code)]
#[path = "CHUNK_RS"]
mod chunk;

use std::io::{BufRead, Write};

fn main() {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().lines() {
        let text = line.unwrap();
        let bounds: Vec<String> = chunk::sentence_boundaries(&text)
            .iter()
            .map(|b| format!("{}{}", b.at, if b.weak { "w" } else { "" }))
            .collect();
        let cost = |s: &str| s.len() / 3 + 1;
        let marian: Vec<String> = chunk::chunk(&text, chunk::Unit::WholeSentence, 512, &cost)
            .iter()
            .skip(1)
            .map(|r| r.start.to_string())
            .collect();
        writeln!(out, "{}\t{}", bounds.join(" "), marian.join(" ")).unwrap();
    }
}
"""


def committed_chunk(rev):
    """The chunk.rs of git revision `rev` (src/text/chunk.rs, or src/chunk.rs before the move)."""
    for path in ("src/text/chunk.rs", "src/chunk.rs"):
        done = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
    sys.exit(f"no chunk.rs at revision {rev}")


def build(chunk_arg, workdir):
    """Builds the measuring binary around chunk.rs (a path, or git:REV for a committed one)."""
    if chunk_arg.startswith("git:"):
        source = committed_chunk(chunk_arg[4:])
        chunk_path = os.path.join(workdir, "chunk_head.rs")
        with open(chunk_path, "w", encoding="utf-8") as f:
            f.write(source)
    else:
        chunk_path = os.path.abspath(chunk_arg)
    main_path = os.path.join(workdir, "main.rs")
    with open(main_path, "w", encoding="utf-8") as f:
        f.write(MAIN_RS.replace("CHUNK_RS", chunk_path))
    binary = os.path.join(workdir, "boundaries")
    subprocess.run(
        ["rustc", "--edition", "2021", "-O", "-A", "warnings", main_path, "-o", binary],
        check=True,
    )
    return binary


def paragraphs(lines, n):
    """Joins groups of n lines; yields (paragraph, byte offsets where lines 2..n start)."""
    for g in range(0, len(lines) - n + 1, n):
        group = [line.strip() for line in lines[g:g + n]]
        group = [line for line in group if line]
        text = " ".join(group)
        joins, at = [], 0
        for line in group[:-1]:
            at += len(line.encode("utf-8")) + 1
            joins.append(at)
        yield text, joins


def run(binary, texts):
    """Runs the binary; returns per paragraph ([(at, weak)], [marian chunk starts])."""
    result = subprocess.run(
        [binary], input="\n".join(texts) + "\n", capture_output=True, text=True,
        check=True, encoding="utf-8",
    )
    out = []
    for line in result.stdout.split("\n")[: len(texts)]:
        bounds_s, _, marian_s = line.partition("\t")
        bounds = [(int(b.rstrip("w")), b.endswith("w")) for b in bounds_s.split()]
        marian = [int(m) for m in marian_s.split()]
        out.append((bounds, marian))
    return out


def ends_sentence(text, at):
    """Whether the line before the join at byte `at` ends in terminal punctuation (quotes,
    brackets after it allowed)."""
    before = text.encode("utf-8")[:at].decode("utf-8").rstrip()
    return bool(re.search(r"[.!?…][\"'”’»)\]]*$", before))


def context(text, at, width=45):
    raw = text.encode("utf-8")
    left = raw[max(0, at - width * 2):at].decode("utf-8", "ignore")[-width:]
    right = raw[at:at + width * 2].decode("utf-8", "ignore")[:width]
    return f"{left}‖{right}"


def score(name, items, cuts_of, samples, rng):
    """Prints recall, extra cuts and precision for one way of cutting."""
    joins = hits = cuts = weak_cuts = 0
    missed, unpunctuated, extra, quoted = [], [], [], []
    for text, true_joins, bounds, marian in items:
        cut, weak = cuts_of(bounds, marian)
        true = set(true_joins)
        joins += len(true)
        hits += len(true & cut)
        cuts += len(cut)
        weak_cuts += len(cut & weak)
        for j in sorted(true - cut):
            (missed if ends_sentence(text, j) else unpunctuated).append((text, j))
        extra += [(text, c) for c in sorted(cut - true)]
        quoted += [(text, c) for c in sorted(cut & weak)]
    recall = hits / joins if joins else 0.0
    punctuated = joins - len(unpunctuated)
    recall_p = (punctuated - len(missed)) / punctuated if punctuated else 0.0
    precision = hits / cuts if cuts else 0.0
    print(f"  {name}:\n    recall {hits}/{joins} = {recall:.4f}; of the {punctuated} joins after "
          f"terminal punctuation {recall_p:.4f} ({len(missed)} missed; the other "
          f"{len(unpunctuated)} follow a line without it, e.g. a headline)\n"
          f"    cuts {cuts}: extra (inside a line) {len(extra)}, precision if every extra cut "
          f"were wrong {precision:.4f}; cuts inside quotations (weak) {weak_cuts}")
    for label, pool in (("missed", missed), ("extra", extra), ("quoted", quoted)):
        for text, at in rng.sample(pool, min(samples, len(pool))):
            print(f"    {label}: {context(text, at)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk", default=os.path.join(ROOT, "src", "text", "chunk.rs"),
                        help="chunk.rs to measure, or git:REV for the one at a revision")
    parser.add_argument("--sets", nargs="+", default=["newstest2018", "flores200-devtest"])
    parser.add_argument("-n", type=int, default=4, help="lines per paragraph")
    parser.add_argument("--samples", type=int, default=8, help="missed/extra cuts to print")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="boundaries-") as workdir:
        binary = build(args.chunk, workdir)
        print(f"chunk.rs: {args.chunk}; {args.n} lines a paragraph")
        for name in args.sets:
            with open(os.path.join(EVAL, name + ".tr"), encoding="utf-8") as f:
                lines = f.read().split("\n")
            if lines and not lines[-1]:
                lines.pop()
            paras = list(paragraphs(lines, args.n))
            texts = [t for t, _ in paras]
            results = run(binary, texts)
            items = [(t, j, b, m) for (t, j), (b, m) in zip(paras, results)]
            print(f"{name}: {len(paras)} paragraphs, {sum(len(j) for _, j in paras)} joins")
            rng = random.Random(args.seed)
            score("strong boundaries (sentences(text, false))", items,
                  lambda b, m: ({a for a, w in b if not w}, {a for a, w in b if w}),
                  args.samples, rng)
            score("all boundaries (sentences(text, true))", items,
                  lambda b, m: ({a for a, _ in b}, {a for a, w in b if w}),
                  args.samples, rng)
            score("Marian path (chunk, Unit::WholeSentence)", items,
                  lambda b, m: (set(m), {a for a, w in b if w}),
                  args.samples, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
