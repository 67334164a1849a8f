#!/usr/bin/env python3
"""How faithful int8 Marian inference is: tercuman's --quantize int8 against its own f32, beside
CTranslate2's int8 against CTranslate2's f32 on the same model and sentences.

For each beam width, each engine translates the test set's sources twice (f32 weights, int8
weights) and the script prints chrF of the int8 output scored against the f32 output, the share
of sentences translated identically, and each side's chrF against the human references. A weak
model (a tiny fixture) has flat next-token distributions, so int8's rounding flips more of its
choices than it would on a strong one: compare the two engines on the same model rather than
reading one figure alone.

    python3 scripts/int8_agreement.py --model tests/fixtures/tiny-marian-trained \\
        --testset flores200-devtest --beams 1 4

Needs ctranslate2, transformers, torch, sentencepiece, sacrebleu (PyPI) and a release build.
Not run in CI.
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def lines(path):
    text = Path(path).read_text(encoding="utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def ours(binary, model, testset, beams, quantize, work):
    out = work / f"ours-{quantize}-b{beams}.json"
    subprocess.run(
        [binary, "eval", "--model", model, "--testset", testset, "--beams", str(beams),
         "--quantize", quantize, "-q", "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    (hyp,) = work.glob(f"ours-{quantize}-b{beams}.json.*.hyp.txt")
    return lines(hyp)


def ct2(model, sources, beams, quantization):
    import ctranslate2
    from transformers import MarianTokenizer

    target = Path(tempfile.gettempdir()) / (Path(model).resolve().name + f"-ct2-{quantization}")
    if not target.exists():
        ctranslate2.converters.TransformersConverter(model).convert(
            str(target), quantization=None if quantization == "float32" else quantization
        )
    tok = MarianTokenizer.from_pretrained(model)
    translator = ctranslate2.Translator(str(target), device="cpu", intra_threads=2)
    batch = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in sources]
    out = translator.translate_batch(batch, beam_size=beams, max_batch_size=16)
    return [tok.convert_tokens_to_string(r.hypotheses[0]) for r in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Marian model directory")
    ap.add_argument("--testset", default="flores200-devtest")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--tercuman", default=str(REPO / "target" / "release" / "tercuman"))
    args = ap.parse_args()
    from sacrebleu.metrics import CHRF

    sources = lines(REPO / "testsets" / f"{args.testset}.tr")
    refs = lines(REPO / "testsets" / f"{args.testset}.en")
    work = Path(tempfile.mkdtemp(prefix="int8-agreement-"))
    chrf = lambda hyps, against: CHRF().corpus_score(hyps, [against]).score
    rows = []
    for beams in args.beams:
        for engine, run in [
            ("tercuman", lambda q: ours(args.tercuman, args.model, args.testset, beams,
                                        {"f32": "none", "int8": "int8"}[q], work)),
            ("ctranslate2", lambda q: ct2(args.model, sources, beams,
                                          {"f32": "float32", "int8": "int8"}[q])),
        ]:
            full, int8 = run("f32"), run("int8")
            same = sum(a == b for a, b in zip(full, int8))
            rows.append({
                "engine": engine, "beams": beams, "sentences": len(full),
                "chrf_int8_vs_f32": chrf(int8, full), "identical": same / len(full),
                "chrf_f32": chrf(full, refs), "chrf_int8": chrf(int8, refs),
            })
    print(f"{args.model}, {args.testset}, {len(sources)} sentences")
    print(f"{'engine':12} {'beams':>5} {'chrF(int8, f32)':>16} {'identical':>10} {'chrF f32':>9} {'chrF int8':>10}")
    for r in rows:
        print(f"{r['engine']:12} {r['beams']:5} {r['chrf_int8_vs_f32']:16.2f} {100 * r['identical']:9.1f}% "
              f"{r['chrf_f32']:9.2f} {r['chrf_int8']:10.2f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
