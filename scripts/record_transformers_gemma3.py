#!/usr/bin/env python3
"""Records transformers' float64 reference logits for the Gemma 3 270M test model.

Why a second reference beside llama.cpp's (scripts/record_llamacpp.py): both llama.cpp and our
quantized path round every activation to 8 bits before each quantized product, and on this
model that rounding turns a 1e-6 change of the input into logit changes of up to ~1.5, so two
correct engines differ from each other by that much. transformers dequantizes the same GGUF
weights and runs the model's own definition (GELU tanh, norms, RoPE bases, the 512-token
sliding window) without that rounding; run in float64 it is exact to far below what we
compare. `tests/it/gemma3_parity.rs` runs our Gemma 3 with the same weights dequantized to f32
(`gemma3::Precision::Dequantized`) against it, to a tolerance that catches any change of the
math, not just the gross ones.

Writes tests/fixtures/transformers-gemma3-270m.json:
  - cases: the prompts of llama.cpp's fixture (its prompt_ids), and one longer than the
    sliding window; for each, transformers' greedy steps with the top-10 (id, logit) and the
    chosen token.

With `--rope-linear FACTOR` the global layers get linear rope scaling (as Gemma 3 4B and larger
are configured: `rope_scaling` linear, factor 8; the sliding layers unscaled), and it writes
tests/fixtures/transformers-gemma3-270m-rope-linear.json instead: the short prompts' first
case and the long one, for the test that reads `gemma3.rope.scaling.factor` into the same
model (`tests/it/gemma3_parity.rs`).

Run by hand, not in CI (loading dequantizes the GGUF in Python, about a minute):
    python3 -m venv /opt/mref
    /opt/mref/bin/pip install torch transformers accelerate gguf numpy
    HF_HUB_OFFLINE=1 /opt/mref/bin/python scripts/record_transformers_gemma3.py "$TERCUMAN_TEST_GGUF"
"""
import hashlib
import json
import pathlib
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEPS = 8
TOP = 10
LONG_LEN = 600  # past the 512-token sliding window


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def greedy(model, prompt, steps):
    out = []
    ids = list(prompt)
    past = None
    feed = torch.tensor([ids])
    for _ in range(steps):
        with torch.no_grad():
            r = model(feed, past_key_values=past, use_cache=True)
        past = r.past_key_values
        logits = r.logits[0, -1]
        values, idx = torch.topk(logits, TOP)
        chosen = int(idx[0])
        out.append(
            {
                "top": [[int(i), float(v)] for i, v in zip(idx, values)],
                "chosen": chosen,
            }
        )
        ids.append(chosen)
        feed = torch.tensor([[chosen]])
    return out


def main():
    args = sys.argv[1:]
    factor = None
    if "--rope-linear" in args:
        i = args.index("--rope-linear")
        factor = float(args[i + 1])
        del args[i : i + 2]
    gguf = pathlib.Path(args[0]).resolve()
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if factor is not None:
        full = dict(config.rope_parameters["full_attention"])
        full.update({"rope_type": "linear", "factor": factor})
        config.rope_parameters["full_attention"] = full
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, config=config, dtype=torch.float32
    )
    model = model.to(torch.float64).eval()
    llama = json.loads(
        (ROOT / "tests/fixtures/llamacpp-gemma3-270m.json").read_text(encoding="utf-8")
    )
    prompts = [c["prompt_ids"] for c in llama["model_cases"]]
    base = prompts[0]
    long = list(base)
    while len(long) < LONG_LEN:
        long.extend(base[1:])  # without a second BOS
    prompts.append(long[:LONG_LEN])

    if factor is not None:
        prompts = [prompts[0], prompts[-1]]
    cases = []
    for prompt in prompts:
        cases.append({"prompt_ids": prompt, "steps": greedy(model, prompt, STEPS)})
        print(f"{len(prompt)} tokens: {[s['chosen'] for s in cases[-1]['steps']]}", file=sys.stderr)

    fixture = {
        "generator": "scripts/record_transformers_gemma3.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float64 (weights dequantized from the GGUF)",
        "hidden_activation": model.config.hidden_activation,
        "model_sha256": sha256(gguf),
        "rope_linear_factor": factor,
        "full_attention_rope": model.config.rope_parameters["full_attention"],
        "cases": cases,
    }
    name = "transformers-gemma3-270m" + ("-rope-linear" if factor is not None else "")
    path = ROOT / f"tests/fixtures/{name}.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
