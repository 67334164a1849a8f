#!/usr/bin/env python3
"""Records sacreBLEU's corpus BLEU, chrF and chrF++ for the parity tests of src/eval/score.rs.

Writes tests/fixtures/sacrebleu/NAME.txt, one file per hypothesis/reference set: hand-made
sets (empty lines, Turkish letters, punctuation runs, numbers, very short lines, a perfect
match, all words wrong, smoothing cases) and two realistic ones (200 FLORES-200 devtest English
lines with deterministic perturbations; newstest2018 English lines slightly shuffled against
themselves). Each file holds the texts and what sacreBLEU computed from them, so the Rust test
needs nothing else. tok13a.txt holds sacreBLEU's 13a tokenization of tricky lines.

The format is plain text that the std-only Rust test parses by hand:
    # comment
    key<TAB>value                         scores, counts (space-separated), signatures
    pair<TAB>"hypothesis"<TAB>"reference"  JSON strings (json.dumps, ensure_ascii=False)
    tok<TAB>"input"<TAB>"13a tokens"

Run by hand after changing the cases or moving to a new sacreBLEU (then update
SACREBLEU_VERSION and the signatures in src/eval/score.rs):
    python3 -m venv /tmp/sacrebleu && /tmp/sacrebleu/bin/pip install sacrebleu==2.6.0
    /tmp/sacrebleu/bin/python scripts/record_sacrebleu.py [EVAL_DIR]
EVAL_DIR holds flores200-devtest.en and newstest2018.en (default: ../shared/eval).
"""
import json
import pathlib
import random
import sys

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.utils import sum_of_lists

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/sacrebleu"
EVAL = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/eval"

BASIC = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("A quick brown fox jumps over the lazy dog", "The quick brown fox jumped over the lazy dog."),
    ("He said that the meeting would start at noon.", "He said the meeting was going to begin at noon."),
    ("Prices rose sharply last year.", "Prices increased sharply in the last year."),
    ("It is raining.", "It's raining today."),
]

TURKISH = [
    ("İstanbul'da ışıklar söndü, Iğdır'da ılık bir gün.", "İstanbul'da ışıklar söndü; Iğdır'da ılık bir gün vardı."),
    ("Çiçekçi ŞÜKRÜ GÖĞÜS öğleden sonra geldi.", "Çiçekçi Şükrü Göğüs öğleden sonra geldi."),
    ("Türkiye Büyük Millet Meclisi toplandı", "TBMM bugün toplandı."),
    ("ığüşöç İĞÜŞÖÇ", "ığüşöç iğüşöç"),
    ("Dışişleri Bakanı, “çok mutlu” olduğunu söyledi.", "Dışişleri Bakanı \"çok mutlu\" olduğunu belirtti."),
    ("Ankara ve İzmir'de kar yağışı bekleniyor", "Ankara ve İzmir’de kar yağışı bekleniyor."),
]

PUNCTUATION = [
    ("Wait... what?!", "Wait… what?!"),
    ("\"Yes,\" he said -- \"no!\"", "“Yes,” he said — “no!”"),
    ("(hi) [there] {you} <tag> a/b c\\d e|f g~h", "(hi) [there] {you} <tag> a/b c\\d e|f g~h"),
    ("Tom &amp; Jerry &quot;met&quot; &lt;here&gt;", "Tom & Jerry \"met\" <here>"),
    ("<skipped> The rest survives.", "The rest survives."),
    ("e-mail: info@example.com; web: https://example.com/a?b=c&d=e", "Email info@example.com, web https://example.com/a?b=c&d=e."),
    ("!!! ??? ,,, ... ;;; ::: ---", "!!! ??? , , , . . . ; ; ; : : : - - -"),
    ("It's the dog's bone, isn't it?", "It is the dog's bone, is it not?"),
    ("'quoted' and `back` and ^caret^ and _under_ and *star* and #hash and %pct", "'quoted' and back and caret and under and star and hash and pct"),
    ("tab\tseparated\u00a0nbsp\u2009thin\u3000ideographic\u001fus \u200bzw  ", "tab separated nbsp thin ideographic us zw"),
]

NUMBERS = [
    ("The budget is 1,250,000.50 dollars.", "The budget is $1,250,000.50."),
    ("Inflation was 3.5% in 2024, up from 2.9%.", "Inflation was 3,5% in 2024, up from 2.9 %."),
    ("Between 10-20 people, i.e. 15 on average.", "Between 10 - 20 people, i.e. 15 on average."),
    ("Call 555-1234 at 14.30 or 9.", "Call 555 - 1234 at 14:30 or 9."),
    (".5 of the U.S. votes, 5. place, 1.,2", "0.5 of the US votes, 5th place, 1., 2"),
    ("On 2025-09-03 at 08:15, 3/4 of 1.000.000 TL was paid.", "On 3 September 2025 at 8.15, three quarters of 1,000,000 lira were paid."),
]

SHORT = [
    ("Yes.", "Yes."),
    ("No", "No."),
    ("OK then", "Okay then"),
    ("a", "b"),
    ("Thanks!", "Thank you!"),
    ("Go", "Go"),
]

SMOOTHING = [
    # Unigrams match, no higher order does: exp smoothing fills orders 2..4.
    ("the cat sat on mat", "mat on sat cat the"),
    ("dogs bark at night loudly", "loudly night at bark dogs"),
]

ALL_WRONG = [
    ("Apples grow quickly everywhere.", "The minister resigned yesterday"),
    ("Blue", "Red"),
    ("zzz yyy xxx www", "aaa bbb ccc ddd"),
]

EMPTY_MIXED = [
    ("", "An empty hypothesis for this reference."),
    ("A hypothesis against an empty reference.", ""),
    ("", ""),
    ("Both sides have text here.", "Both sides have text here too."),
    ("   ", "Whitespace only hypothesis."),
]


def flores_perturbed(n=200):
    """FLORES devtest English lines as references; hypotheses made by dropping, swapping and
    lowercasing words and trimming final punctuation, chosen by a seeded generator."""
    refs = (EVAL / "flores200-devtest.en").read_text(encoding="utf-8").split("\n")[:n]
    rng = random.Random(2018)
    hyps = []
    for i, ref in enumerate(refs):
        words = ref.split()
        kind = i % 5
        if kind == 0:
            words = [w for w in words if rng.random() > 0.15]
        elif kind == 1 and len(words) > 3:
            j = rng.randrange(len(words) - 1)
            words[j], words[j + 1] = words[j + 1], words[j]
        elif kind == 2:
            words = [w.lower() if rng.random() < 0.3 else w for w in words]
        elif kind == 3:
            words = words[: max(1, len(words) * 2 // 3)]
        if i % 7 == 0 and words and words[-1][-1:] in ".?!":
            words[-1] = words[-1][:-1]
        hyps.append(" ".join(words))
    return list(zip(hyps, refs))


def newstest_shuffled(n=150, offset=400):
    """newstest2018 English lines against themselves, slightly shuffled: every fourth line
    trades places with its neighbour, the others get a few neighbouring words swapped."""
    refs = (EVAL / "newstest2018.en").read_text(encoding="utf-8").split("\n")[offset : offset + n]
    rng = random.Random(17)
    hyps = list(refs)
    for i in range(0, n - 1, 4):
        hyps[i], hyps[i + 1] = hyps[i + 1], hyps[i]
    for i in range(n):
        if i % 4 in (2, 3):
            words = hyps[i].split()
            for _ in range(max(1, len(words) // 8)):
                if len(words) > 1:
                    j = rng.randrange(len(words) - 1)
                    words[j], words[j + 1] = words[j + 1], words[j]
            hyps[i] = " ".join(words)
    return list(zip(hyps, refs))


TOKENIZER_CASES = [
    "Hello, world.", "It cost $1,000.50 (about €900).", "10-20 people", "well-known U.S. data",
    ".5 and 5.", "Wait...", "a.. b", "x.,5", "5.,a", ",,5", "5,,", "1.2.3", "a.b.c", "3-4-5",
    "-5", "5-", "a-5", "5--6", "\"quoted\" & <tag>", "Tom &amp; Jerry &quot;hi&quot; &amp;lt;",
    "&AMP; &gt;&lt;", "<skipped> gone", "hyph-\nenated\nline", "don't stop", "İstanbul'da, 3,5 milyon.",
    "a\u00a0b\u2009c\u001fd\u200be", "", "   ", "trailing   \t", "ÇĞİÖŞÜ çğıöşü, «tırnak» ‘tek’",
    "{curly}[square]`tick`^hat~tilde|pipe\\back_under", "a+b=c*d/e:f;g?h@i!j#k%l",
    "١٢٣.٤ arabic digits.", "x.٥", "9.a", "a.9", "9,a", "a,9", "…and — dashes – here",
    "Dr. Smith, Ph.D., arrived at 9 a.m.", "Price: 1.000,50 €.", "e-mail: a@b.com/x?y=z&w=1",
    "Line with\rcarriage return", "\u0085next line\u2028sep",
]


def record(name, about, pairs):
    hyps = [h for h, _ in pairs]
    refs = [r for _, r in pairs]
    bleu, chrf, chrfpp = BLEU(), CHRF(), CHRF(word_order=2)
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    cpp = chrfpp.corpus_score(hyps, [refs])
    stats = sum_of_lists(chrfpp._extract_corpus_statistics(hyps, [refs]))
    lines = [
        f"# sacreBLEU {sacrebleu.__version__} scores, written by scripts/record_sacrebleu.py; do not edit.",
        f"# {about}",
        f"version\t{sacrebleu.__version__}",
        f"bleu_signature\t{bleu.get_signature()}",
        f"chrf_signature\t{chrf.get_signature()}",
        f"chrfpp_signature\t{chrfpp.get_signature()}",
        f"bleu_score\t{b.score!r}",
        f"bleu_counts\t{' '.join(map(str, b.counts))}",
        f"bleu_totals\t{' '.join(map(str, b.totals))}",
        *(f"bleu_precision_{n + 1}\t{float(p)!r}" for n, p in enumerate(b.precisions)),
        f"bleu_bp\t{float(b.bp)!r}",
        f"bleu_lens\t{b.sys_len} {b.ref_len}",
        f"bleu_text\t{b.format()}",
        f"chrf_score\t{c.score!r}",
        f"chrfpp_score\t{cpp.score!r}",
        f"chrfpp_stats\t{' '.join(map(str, stats))}",
    ]
    for h, r in pairs:
        lines.append(f"pair\t{json.dumps(h, ensure_ascii=False)}\t{json.dumps(r, ensure_ascii=False)}")
    (OUT / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{name:18} {len(pairs):4} lines  BLEU {b.score:8.4f}  chrF {c.score:8.4f}  chrF++ {cpp.score:8.4f}")


def record_tokenizer():
    bleu = BLEU()
    lines = [
        f"# sacreBLEU {sacrebleu.__version__} 13a tokenization (BLEU._preprocess_segment: rstrip,"
        " then 13a), written by scripts/record_sacrebleu.py; do not edit.",
        f"version\t{sacrebleu.__version__}",
    ]
    for case in TOKENIZER_CASES:
        tokens = bleu._preprocess_segment(case)
        lines.append(f"tok\t{json.dumps(case, ensure_ascii=False)}\t{json.dumps(tokens, ensure_ascii=False)}")
    (OUT / "tok13a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    record("basic", "Ordinary English sentences, one exact match.", BASIC)
    record("perfect", "Every hypothesis equals its reference.", [(r, r) for _, r in BASIC + TURKISH])
    record("all_wrong", "No word of any hypothesis is in its reference.", ALL_WRONG)
    record("smoothing", "Only unigrams match: exp smoothing of orders 2..4.", SMOOTHING)
    record("short", "Lines of one or two tokens: no 4-grams at all, BLEU 0.", SHORT)
    record("empty_mixed", "Empty hypotheses, empty references, both empty, whitespace only.", EMPTY_MIXED)
    record("empty_hyps", "Every hypothesis empty: brevity penalty 0.", [("", r) for _, r in BASIC])
    record("empty_refs", "Every reference empty.", [(h, "") for h, _ in BASIC])
    record("all_empty", "Both sides empty on every line.", [("", "")] * 3)
    record("turkish", "Turkish letters (ç ğ ı İ ö ş ü), mixed case, typographic quotes.", TURKISH)
    record("punctuation", "Punctuation runs, entities, <skipped>, URLs, Unicode spaces.", PUNCTUATION)
    record("numbers", "Numbers with commas, periods, dashes, dates and times.", NUMBERS)
    record("flores_perturbed", "FLORES-200 devtest English 0..200 with words dropped, swapped, lowercased.", flores_perturbed())
    record("newstest_shuffled", "newstest2018 English 400..550, lines and words slightly shuffled.", newstest_shuffled())
    record_tokenizer()


if __name__ == "__main__":
    main()
