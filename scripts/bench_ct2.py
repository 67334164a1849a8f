#!/usr/bin/env python3
"""Runs one Marian workload through `tercuman bench` and through CTranslate2, and prints the
ratios of source words/s and peak RSS.

The workload: a Marian model directory (e.g. the tc-big-shaped random model made by
`scripts/make_tiny_marian.py --full-size --out DIR`), the sentences tercuman cuts the sample
article into (written by `tercuman bench --dump-sentences`), every sentence decoding exactly
--gen-tokens tokens (end of sentence included), the same beam width, batch size and threads.
Each engine runs in a fresh process.

CTranslate2 comes from PyPI (its converter needs transformers and torch):
    python3 -m venv /opt/mref && /opt/mref/bin/pip install torch transformers sentencepiece ctranslate2
    cargo build --release
    /opt/mref/bin/python scripts/bench_ct2.py --model DIR --beams 4 --batch-size 16 --threads 2
    /opt/mref/bin/python scripts/bench_ct2.py --model DIR --quantization int8   # both int8

With --quantization int8 tercuman runs with --quantize int8 too, unless --ours f32.

Not run in CI.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def ct2(ct2_dir, tokens_file, beams, batch_size, gen_tokens, threads):
    """The CTranslate2 side, run in this (fresh) process, which imports nothing else heavy
    (the sentences come tokenized, so that torch is not counted in its memory)."""
    import ctranslate2

    data = json.loads(Path(tokens_file).read_text(encoding="utf-8"))
    sentences, batch = data["sentences"], data["tokens"]
    t = time.perf_counter()
    translator = ctranslate2.Translator(ct2_dir, device="cpu", inter_threads=1, intra_threads=threads)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    # CTranslate2 counts the decoding length without the end token; ours counts it.
    out = translator.translate_batch(
        batch,
        beam_size=beams,
        max_batch_size=batch_size,
        batch_type="examples",
        min_decoding_length=gen_tokens - 1,
        max_decoding_length=gen_tokens - 1,
        return_scores=False,
    )
    wall = time.perf_counter() - t
    lengths = sorted({len(r.hypotheses[0]) for r in out})
    words = sum(len(s.split()) for s in sentences)
    return {
        "kind": "ctranslate2 " + ctranslate2.__version__,
        "load_s": load_s,
        "sentences": len(sentences),
        "source_words": words,
        "output_lengths": lengths,
        "wall_s": wall,
        "words_per_s": words / wall,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Marian model directory")
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantization", default="float32", help="CTranslate2 weights: float32 or int8")
    ap.add_argument(
        "--ours",
        choices=["f32", "int8"],
        help="tercuman's weights (its --quantize) [default: as --quantization]",
    )
    ap.add_argument("--runs", type=int, default=2, help="runs of each engine, alternating; the fastest is kept")
    ap.add_argument("--tercuman", default=str(REPO / "target" / "release" / "tercuman"))
    ap.add_argument("--engine", choices=["ct2"], help=argparse.SUPPRESS)
    ap.add_argument("--ct2-dir", help=argparse.SUPPRESS)
    ap.add_argument("--tokens", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.engine == "ct2":
        print(json.dumps(ct2(args.ct2_dir, args.tokens, args.beams, args.batch_size, args.gen_tokens, args.threads)))
        return

    ours_weights = args.ours or ("int8" if args.quantization.startswith("int8") else "f32")
    work = Path(tempfile.mkdtemp(prefix="bench-ct2-"))
    sentences = work / "sentences.txt"

    def run_ours():
        return json.loads(
            subprocess.run(
                [
                    args.tercuman, "bench", "--model", args.model, "--beams", str(args.beams),
                    "--batch-size", str(args.batch_size), "--gen-tokens", str(args.gen_tokens),
                    "--threads", str(args.threads), "--dump-sentences", str(sentences), "--json",
                    "--quantize", "int8" if ours_weights == "int8" else "none",
                ],
                check=True, capture_output=True, text=True,
            ).stdout
        )

    ours_runs = [run_ours()]
    # The same sentences, tokenized by the reference MarianTokenizer.
    from transformers import MarianTokenizer

    tok = MarianTokenizer.from_pretrained(args.model)
    lines = sentences.read_text(encoding="utf-8").splitlines()
    tokens = work / "tokens.json"
    tokens.write_text(
        json.dumps({"sentences": lines, "tokens": [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in lines]}),
        encoding="utf-8",
    )
    ct2_dir = Path(args.model).resolve().parent / (Path(args.model).name + f"-ct2-{args.quantization}")
    if not ct2_dir.exists():
        import ctranslate2

        ctranslate2.converters.TransformersConverter(args.model).convert(
            str(ct2_dir), quantization=None if args.quantization == "float32" else args.quantization
        )

    def run_ref():
        return json.loads(
            subprocess.run(
                [
                    sys.executable, __file__, "--engine", "ct2", "--model", args.model, "--ct2-dir", str(ct2_dir),
                    "--tokens", str(tokens), "--beams", str(args.beams), "--batch-size", str(args.batch_size),
                    "--gen-tokens", str(args.gen_tokens), "--threads", str(args.threads),
                ],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines()[-1]
        )

    # Alternating runs, the fastest of each kept: these machines are noisy.
    ref_runs = [run_ref()]
    for _ in range(args.runs - 1):
        ours_runs.append(run_ours())
        ref_runs.append(run_ref())
    ours = max(ours_runs, key=lambda r: r["words_per_s"])
    ref = max(ref_runs, key=lambda r: r["words_per_s"])
    if ref["output_lengths"] != [args.gen_tokens - 1]:
        print(f"warning: CTranslate2 output lengths {ref['output_lengths']}, expected {args.gen_tokens - 1}")
    print(
        f"model {args.model}: {ref['sentences']} sentences, {ref['source_words']} words, {args.gen_tokens} tokens "
        f"each, beam {args.beams}, batch {args.batch_size}, {args.threads} threads; tercuman {ours_weights}, "
        f"CTranslate2 {args.quantization}, "
        f"best of {args.runs}"
    )
    print(f"{'':12} {'tercuman':>12} {'ct2':>12} {'ratio':>8}")
    for name, a, b in [
        ("load s", ours["load_s"], ref["load_s"]),
        ("words/s", ours["words_per_s"], ref["words_per_s"]),
        ("peak RSS MB", ours["peak_rss_bytes"] / 1e6, ref["peak_rss_bytes"] / 1e6),
    ]:
        print(f"{name:12} {a:12.2f} {b:12.2f} {a / b:8.2f}")


if __name__ == "__main__":
    main()
