#!/usr/bin/env python3
"""Seeded corruption generator for the fidelity checks (src/check/).

Given line-aligned Turkish/English files (e.g. /work/shared/eval/newstest2018.{tr,en}), it
writes a copy of the English with one kind of error put into every line where that kind
applies, and a JSON-lines manifest naming the corrupted lines:

    python3 scripts/corrupt.py --source newstest2018.tr --reference newstest2018.en \
        --kind omission --seed 1 --out /tmp/corrupt

writes /tmp/corrupt/newstest2018.omission.en (all lines; those not in the manifest are
unchanged) and /tmp/corrupt/newstest2018.omission.jsonl, one object per corrupted line:
{"line": 0-based line number, "kind", "mode", "before", "after", ...}.

Recall is measured over the manifest's lines only: a kind that does not apply to a line
(no number in it, a single sentence, no quotation) leaves the line alone and out of the count.
Lines are corrupted independently; `--rate` corrupts only that share of applicable lines.

Kinds and modes (one mode is drawn per line among those that apply):
  number        `digit` changes one digit, `scale` multiplies by 10 (a 0 added to the integer
                part), `drop` deletes the number; only lines whose English has a number.
  omission      `sentence` drops one sentence (not the first when it is a short lead-in) of a
                line with two or more English sentences; on one-sentence lines of 8+ words
                `truncate` cuts the last 40-60% of the words (output stopped early, no final
                punctuation) or `clause` drops a comma-delimited clause of >= 40% of the words
                (the sentence still ends with its full stop).
  addition      `sentence`: appends the English of another line (a whole sentence).
  name          `swap`: a capitalised name of the line (also found in its Turkish, and only
                once in its English, so that it is gone after the swap) is replaced by a
                proper name of another line that neither side of this line contains.
  invented_name `pronoun` replaces he/she/they with a proper name found nowhere in the source,
                or `according` adds ", according to NAME" before the final punctuation.
  A proper name, put in by these two kinds, is a capitalised English word or run of them whose
  last word the Turkish of the same line writes with a suffix after an apostrophe (`Putin'in`,
  `Fife'den`): Turkish spelling marks proper names so, which keeps capitalised common words
  (`Olympic`, `Assembly`, `Verb`) out of the pool without a word list of the checker's.
  untranslated  `line` replaces the English with the Turkish source; `sentence` replaces one
                English sentence by the Turkish sentence at the same position (lines whose two
                sides have the same number of sentences, two or more).
  repetition    `ngram` repeats the last 1-6 words of the line so they occur 3-6 times in all
                (a decoding loop at the end of a block); `token` appends one word looped
                without spaces ("connectconnectconnect...", 3-8 times).
  quote         `remove` deletes one quoted passage with its marks (lines whose English has a
                quotation and whose Turkish has at least as many; 3+ words must remain);
                `add` inserts a quotation from another line's English, before the final
                punctuation, as `, saying "..."`.

Python standard library only; the same arguments give the same output.
"""

import argparse
import json
import os
import random
import re

ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "col", "lt", "sgt", "gov",
    "sen", "rep", "inc", "ltd", "co", "corp", "vs", "no", "u.s", "u.k", "u.n", "e.g", "i.e",
    "jan", "feb", "aug", "sept", "oct", "nov", "dec", "vb", "vs", "av", "doç", "yrd",
}

SENT_END = re.compile(r'[.!?…]+["”’\')\]]*\s+(?=["“‘(\[]?[A-ZÇĞİÖŞÜ0-9])')


def sentences(text):
    """Splits text at sentence ends (a full stop, ?, ! before a capital), skipping
    abbreviations and initials. Returns the list of sentences with their trailing spaces."""
    out, start = [], 0
    for m in SENT_END.finditer(text):
        word = re.findall(r"[\w.]+$", text[start:m.start() + 1].rstrip("."))
        w = word[0].lower() if word else ""
        ordinal = w.isdigit() and len(w) <= 3  # `2. Ağır Ceza`, `75. Yıl`
        if w in ABBREV or (len(w) == 1 and w.isalpha()) or ordinal or re.fullmatch(r"(\w\.)+\w?", w):
            continue
        out.append(text[start:m.end()])
        start = m.end()
    out.append(text[start:])
    return [s for s in out if s]


NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
STOP_CAPS = {
    "The", "A", "An", "In", "On", "At", "He", "She", "It", "They", "We", "I", "But", "And",
    "This", "That", "These", "Those", "There", "His", "Her", "Their", "Our", "As", "If", "When",
    "For", "With", "After", "Before", "By", "From", "Of", "To", "So", "Mr", "Mrs", "Ms", "Dr",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December", "What", "Who", "How", "Why", "Where", "While", "Although", "Yes",
    "No", "Not", "All", "One", "Two", "Some", "Many", "Most", "According", "However", "Also",
}
# Words seen in lower case in the English file (filled by main): never names.
LOWER = set()
NAME = re.compile(r"\b[A-Z][a-z]+(?:[- ][A-Z][a-z]+)*\b")


def names_of(text):
    """Capitalised words and runs of them, not at a sentence start and not common words.
    Headlines (most words capitalised) give none."""
    found = []
    words = re.findall(r"[^\W\d_]+", text)
    if sum(w[0].isupper() for w in words) * 2 > len(words):
        return found
    for m in NAME.finditer(text):
        before = text[:m.start()].rstrip()
        if not before or before[-1] in '.!?:"“':
            continue
        if m.group(0).split()[0] in STOP_CAPS or any(w.lower() in LOWER for w in re.split(r"[- ]", m.group(0))):
            continue
        found.append((m.start(), m.end(), m.group(0)))
    return found


def stem(word):
    return word.lower()[:5]


def mentions(text, name):
    """Whether `text` contains `name`, allowing Turkish suffixes (matching 5-letter stems)."""
    low = text.lower()
    return all(stem(p) in low for p in name.split())


def corrupt_number(rng, tr, en, ctx):
    nums = list(NUMBER.finditer(en))
    if not nums:
        return None
    m = rng.choice(nums)
    value = m.group(0)
    mode = rng.choice(["digit", "scale", "drop"])
    if mode == "digit":
        idx = [i for i, c in enumerate(value) if c.isdigit()]
        i = rng.choice(idx)
        choices = [d for d in "0123456789" if d != value[i] and not (i == 0 and d == "0")]
        new = value[:i] + rng.choice(choices) + value[i + 1:]
    elif mode == "scale":
        head = re.match(r"\d+", value).group(0)
        new = head + "0" + value[len(head):]
    else:
        new = ""
    after = en[:m.start()] + new + en[m.end():]
    if mode == "drop":
        after = re.sub(r"  +", " ", after).strip()
    return after, {"mode": mode, "value": value, "new": new}


def corrupt_omission(rng, tr, en, ctx):
    sents = sentences(en)
    if len(sents) >= 2:
        candidates = [i for i, s in enumerate(sents) if len(s.split()) >= 3] or list(range(len(sents)))
        i = rng.choice(candidates)
        kept = sents[:i] + sents[i + 1:]
        after = "".join(kept).strip()
        return after, {"mode": "sentence", "dropped": sents[i].strip()}
    words = en.split()
    if len(words) < 8:
        return None
    modes = ["truncate"]
    clauses = [c for c in re.split(r"(?<=,)\s+", en)]
    if len(clauses) >= 2:
        modes.append("clause")
    mode = rng.choice(modes)
    if mode == "truncate":
        keep = len(words) - max(1, round(len(words) * rng.uniform(0.4, 0.6)))
        after = " ".join(words[:keep]).rstrip(",;:")
        return after, {"mode": mode, "dropped": " ".join(words[keep:])}
    total = len(words)
    big = [i for i, c in enumerate(clauses) if len(c.split()) >= 0.4 * total]
    if not big:
        keep = len(words) - max(1, round(len(words) * rng.uniform(0.4, 0.6)))
        after = " ".join(words[:keep]).rstrip(",;:")
        return after, {"mode": "truncate", "dropped": " ".join(words[keep:])}
    i = rng.choice(big)
    dropped = clauses[i]
    kept = clauses[:i] + clauses[i + 1:]
    after = " ".join(kept)
    if i == len(clauses) - 1:
        end = re.search(r"[.!?\"”]+$", dropped)
        after = after.rstrip(" ,") + (end.group(0) if end else "")
    if i == 0:
        after = after[:1].upper() + after[1:]
    return after, {"mode": "clause", "dropped": dropped}


def corrupt_addition(rng, tr, en, ctx):
    other = ctx["other"](lambda j: len(ctx["en"][j].split()) >= 5)
    extra = ctx["en"][other].strip()
    sep = " " if en.rstrip()[-1:] in ".!?\"”" else ". "
    return en.rstrip() + sep + extra, {"mode": "sentence", "from_line": other, "added": extra}


def corrupt_name(rng, tr, en, ctx):
    own = [n for n in names_of(en) if mentions(tr, n[2]) and en.count(n[2]) == 1]
    if not own:
        return None
    start, end, name = rng.choice(own)
    new = fresh_name(rng, tr, en, ctx)
    if new is None:
        return None
    return en[:start] + new + en[end:], {"mode": "swap", "old": name, "new": new}


def proper_names(tr, en):
    """The names of `en` (names_of) whose last word its Turkish `tr` writes with a suffix
    after an apostrophe: `Putin` of a line with `Putin'in`."""
    marked = {stem(w) for w in re.findall(r"([^\W\d_]+)['’][^\W\d_]", tr)}
    return [n[2] for n in names_of(en) if stem(re.split(r"[- ]", n[2])[-1]) in marked]


def fresh_name(rng, tr, en, ctx):
    for _ in range(50):
        j = ctx["other"](lambda j: True)
        pool = [n for n in proper_names(ctx["tr"][j], ctx["en"][j])
                if not mentions(tr, n) and not mentions(en, n)]
        if pool:
            return rng.choice(pool)
    return None


def corrupt_invented_name(rng, tr, en, ctx):
    name = fresh_name(rng, tr, en, ctx)
    if name is None:
        return None
    pronouns = list(re.finditer(r"\b(he|she|they)\b", en))
    if pronouns and rng.random() < 0.5:
        m = rng.choice(pronouns)
        return en[:m.start()] + name + en[m.end():], {"mode": "pronoun", "new": name}
    m = re.search(r"[.!?\"”]*$", en.rstrip())
    body, end = en.rstrip()[:m.start()], m.group(0)
    if '"' in end or "”" in end:
        return en.rstrip() + " according to " + name + ".", {"mode": "according", "new": name}
    return body + ", according to " + name + end, {"mode": "according", "new": name}


def corrupt_untranslated(rng, tr, en, ctx):
    if not re.search(r"[^\W\d_]", tr):
        return None
    se, st = sentences(en), sentences(tr)
    if len(se) >= 2 and len(se) == len(st) and rng.random() < 0.5:
        i = rng.randrange(len(se))
        space = se[i][len(se[i].rstrip()):]
        out = se[:i] + [st[i].rstrip() + space] + se[i + 1:]
        return "".join(out), {"mode": "sentence", "index": i}
    return tr, {"mode": "line"}


def corrupt_repetition(rng, tr, en, ctx):
    words = en.rstrip().split()
    if len(words) < 3:
        return None
    if rng.random() < 0.5:
        n = rng.randint(1, min(6, len(words)))
        gram = " ".join(words[-n:])
        times = rng.randint(2, 5)
        return en.rstrip() + (" " + gram) * times, {"mode": "ngram", "n": n, "times": times + 1}
    plain = [re.sub(r"\W", "", w) for w in words]
    plain = [w for w in plain if len(w) >= 3 and w.isalpha()]
    if not plain:
        return None
    w = rng.choice(plain).lower()
    times = rng.randint(3, 8)
    return en.rstrip() + " " + w * times, {"mode": "token", "word": w, "times": times}


QUOTE = re.compile(r'"[^"]{2,}?"|“[^”]{2,}?”')


TR_QUOTE = re.compile(r'"[^"]{2,}?"|“[^”]{2,}?”|«[^»]{2,}?»')


def corrupt_quote(rng, tr, en, ctx):
    quotes = list(QUOTE.finditer(en))
    # `"` as an apostrophe in Turkish web text (`Beşiktaş"a`) is no quotation mark.
    tr_quotes = TR_QUOTE.findall(re.sub(r'(?<=\w)"(?=[a-zçğıöşü])', "'", tr))
    if quotes and len(tr_quotes) >= len(quotes) and rng.random() < 0.5:
        m = rng.choice(quotes)
        after = re.sub(r"  +", " ", en[:m.start()] + en[m.end():]).strip()
        if len(after.split()) >= 3:
            return after, {"mode": "remove", "removed": m.group(0)}
    for _ in range(50):
        j = ctx["other"](lambda j: True)
        pool = [q.group(0) for q in QUOTE.finditer(ctx["en"][j]) if len(q.group(0).split()) >= 3]
        if pool:
            q = rng.choice(pool)
            q = '"' + q[1:-1].strip(" ,.") + '"'
            m = re.search(r"[.!?]*$", en.rstrip())
            body, end = en.rstrip()[:m.start()], m.group(0)
            return body + ", saying " + q + end, {"mode": "add", "added": q, "from_line": j}
    return None


KINDS = {
    "number": corrupt_number,
    "omission": corrupt_omission,
    "addition": corrupt_addition,
    "name": corrupt_name,
    "invented_name": corrupt_invented_name,
    "untranslated": corrupt_untranslated,
    "repetition": corrupt_repetition,
    "quote": corrupt_quote,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="Turkish file, one segment a line")
    ap.add_argument("--reference", required=True, help="English file, line-aligned")
    ap.add_argument("--kind", required=True, choices=sorted(KINDS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1.0,
                    help="share of applicable lines to corrupt (default: all)")
    ap.add_argument("--out", required=True, help="folder for the .en file and the manifest")
    args = ap.parse_args()

    with open(args.source, encoding="utf-8") as f:
        tr = f.read().split("\n")
    with open(args.reference, encoding="utf-8") as f:
        en = f.read().split("\n")
    if tr and tr[-1] == "":
        tr.pop()
    if en and en[-1] == "":
        en.pop()
    if len(tr) != len(en):
        raise SystemExit(f"{args.source} has {len(tr)} lines, {args.reference} {len(en)}")

    rng = random.Random(f"{args.seed}:{args.kind}")
    LOWER.update(w for line in en for w in re.findall(r"\b[a-z]+\b", line))

    out_lines, manifest = [], []
    for i, (t, e) in enumerate(zip(tr, en)):
        def other(ok, i=i):
            for _ in range(1000):
                j = rng.randrange(len(en))
                if j != i and ok(j):
                    return j
            return (i + 1) % len(en)

        ctx = {"tr": tr, "en": en, "other": other}
        result = None
        if e.strip() and rng.random() < args.rate:
            result = KINDS[args.kind](rng, t, e, ctx)
        if result is None or result[0] == e:
            out_lines.append(e)
            continue
        after, info = result
        out_lines.append(after)
        manifest.append({"line": i, "kind": args.kind, **info, "before": e, "after": after})

    os.makedirs(args.out, exist_ok=True)
    base = os.path.splitext(os.path.basename(args.reference))[0]
    en_path = os.path.join(args.out, f"{base}.{args.kind}.en")
    with open(en_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out_lines) + "\n")
    with open(os.path.join(args.out, f"{base}.{args.kind}.jsonl"), "w", encoding="utf-8") as f:
        for m in manifest:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    print(f"{en_path}: {len(manifest)} of {len(en)} lines corrupted ({args.kind})")


if __name__ == "__main__":
    main()
