#!/usr/bin/env python3
"""Runs one workload through `tercuman bench` and through llama.cpp, and prints the ratios.

The workload: a GGUF model, a prompt file whose text is tokenized as-is after the model's BOS
(where its `tokenizer.ggml.add_bos_token` asks for one), one prefill, then N greedy tokens with
end-of-sequence ignored, T threads. Each engine runs in
a fresh process, so that load time and peak RSS are its own.

llama.cpp comes from llama-cpp-python (PyPI; it builds llama.cpp from source, ~20 minutes, once):
    python3 -m venv /opt/llref && /opt/llref/bin/pip install llama-cpp-python==0.3.36
or, where llama.cpp is already built as shared libraries (as for scripts/bench_remote.sh's
llama-server: cmake -DBUILD_SHARED_LIBS=ON), the Python package alone pointed at them:
    CMAKE_ARGS="-DLLAMA_BUILD=OFF" pip install llama-cpp-python==0.3.36
    export LLAMA_CPP_LIB_PATH=/path/to/llama.cpp/build/bin
    cargo build --release
    /opt/llref/bin/python scripts/bench_llamacpp.py --model M.gguf --prompt-file F --gen-tokens 64 --threads 2

Not run in CI (tests/it/cli.rs runs a smoke version of `tercuman bench`).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def llamacpp(model, prompt_file, gen_tokens, threads):
    """The llama.cpp side, run in this (fresh) process."""
    import llama_cpp

    text = Path(prompt_file).read_text(encoding="utf-8")
    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=2048,
        n_batch=2048,
        n_ubatch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    load_s = time.perf_counter() - t
    ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    t = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(gen_tokens):
        logits = llm.scores[llm.n_tokens - 1]
        llm.eval([int(logits.argmax())])
    decode = time.perf_counter() - t
    return {
        "kind": "llama.cpp " + llama_cpp.__version__,
        "threads": threads,
        "load_s": load_s,
        "prompt_tokens": len(ids),
        "prefill_tps": len(ids) / prefill,
        "gen_tokens": gen_tokens,
        "decode_tps": gen_tokens / decode,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2, help="runs of each engine, alternating; the best is kept")
    ap.add_argument("--tercuman", default=str(REPO / "target" / "release" / "tercuman"))
    ap.add_argument("--engine", choices=["llamacpp"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.engine == "llamacpp":
        print(json.dumps(llamacpp(args.model, args.prompt_file, args.gen_tokens, args.threads)))
        return

    ours_cmd = [
        args.tercuman, "bench", "--model", args.model, "--prompt-file", args.prompt_file,
        "--gen-tokens", str(args.gen_tokens), "--threads", str(args.threads), "--json",
    ]
    ref_cmd = [
        sys.executable, __file__, "--engine", "llamacpp", "--model", args.model,
        "--prompt-file", args.prompt_file, "--gen-tokens", str(args.gen_tokens),
        "--threads", str(args.threads),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    ours, ref = [], []
    for _ in range(args.runs):
        ours.append(json.loads(subprocess.run(ours_cmd, check=True, capture_output=True, text=True, env=env).stdout))
        ref.append(json.loads(subprocess.run(ref_cmd, check=True, capture_output=True, text=True, env=env).stdout.splitlines()[-1]))

    def best(runs, key, high=True):
        return (max if high else min)(r[key] for r in runs)

    if ours[0]["prompt_tokens"] != ref[0]["prompt_tokens"]:
        print(f"warning: prompt tokens differ: ours {ours[0]['prompt_tokens']}, llama.cpp {ref[0]['prompt_tokens']}")
    print(f"model {args.model}, {ours[0]['prompt_tokens']} prompt tokens, {args.gen_tokens} generated, {args.threads} threads, best of {args.runs}")
    print(f"{'':12} {'tercuman':>12} {'llama.cpp':>12} {'ratio':>8}")
    rows = [
        ("load s", "load_s", False),
        ("prefill t/s", "prefill_tps", True),
        ("decode t/s", "decode_tps", True),
        ("peak RSS MB", "peak_rss_bytes", False),
    ]
    for name, key, high in rows:
        a, b = best(ours, key, high), best(ref, key, high)
        scale = 1e6 if key == "peak_rss_bytes" else 1
        print(f"{name:12} {a / scale:12.2f} {b / scale:12.2f} {a / b:8.2f}")


if __name__ == "__main__":
    main()
