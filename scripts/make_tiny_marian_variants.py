#!/usr/bin/env python3
"""Writes the tiny Marian model (tests/fixtures/tiny-marian, from make_tiny_marian.py) in the
other forms real hub repos ship, and records what transformers does with each:

- tiny-marian-f16/model.safetensors: the weights rounded to f16, as
  Helsinki-NLP/opus-mt-tc-big-tr-en ships them. reference.json: generate's greedy and beam-4 ids
  on those f16 weights computed in f32 (`dtype=torch.float32`, what tercuman does), and how many
  of them f16 arithmetic (transformers' default for this file) reproduces.
- tiny-marian-pth/legacy/pytorch_model.bin: the f32 weights written by
  torch.save(..., _use_new_zipfile_serialization=False), the pre-1.6 format of
  Helsinki-NLP/opus-mt-tr-en, beside its zip-format twin tiny-marian-pth/pytorch_model.bin.
- tiny-marian-genconfig/: config.json with the older generation keys (num_beams 4) and a
  generation_config.json that disagrees (num_beams 6, a second banned token, a shorter
  max_length, renormalize_logits), as the OPUS-MT repos carry both. reference.json: generate's
  ids with the generation config's defaults, with num_beams=1 given over them, and with
  renormalize_logits=False.
- pth-legacy-dtypes.bin + .json: a legacy-format file of small tensors of every float type,
  with a transposed view, a strided slice at an offset, two names on one storage and an int64
  tensor; the JSON holds their values.

Run once, not in CI (needs torch, transformers, safetensors; about 8 minutes on 2 CPUs, most of
it the f16-arithmetic check):
    python3 scripts/make_tiny_marian_variants.py
"""

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import torch
import transformers
from transformers import MarianMTModel

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures"
TINY = FIX / "tiny-marian"


def cases():
    return json.loads((TINY / "reference.json").read_text(encoding="utf-8"))["cases"]


def generate(model, ids, **kw):
    enc = torch.tensor([ids])
    # The length limit tercuman uses: twice the source plus 10 new tokens, within max_length.
    limit = min(1 + 2 * len(ids) + 10, model.generation_config.max_length)
    with torch.no_grad():
        out = model.generate(enc, attention_mask=torch.ones_like(enc), max_length=limit, **kw)
    return out[0].tolist()


def about():
    return f"made by scripts/make_tiny_marian_variants.py with transformers {transformers.__version__}, torch {torch.__version__}"


def f16(model):
    out = FIX / "tiny-marian-f16"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.half().save_pretrained(tmp, safe_serialization=True)
        model.float()
        shutil.copy(Path(tmp) / "model.safetensors", out / "model.safetensors")
        for f in ("source.spm", "target.spm", "vocab.json", "generation_config.json"):
            shutil.copy(TINY / f, Path(tmp) / f)
        m32 = MarianMTModel.from_pretrained(tmp, dtype=torch.float32).eval()
        m16 = MarianMTModel.from_pretrained(tmp, dtype=torch.float16).eval()
    f32_ref = cases()
    rows, agree, changed = [], 0, 0
    for case in f32_ref:
        row = {"text": case["text"], "ids": case["ids"]}
        for name, beams in (("greedy", 1), ("beam4", 4)):
            row[name] = generate(m32, case["ids"], num_beams=beams)
            agree += generate(m16, case["ids"], num_beams=beams) == row[name]
            changed += row[name] != case[name]["ids"]
        rows.append(row)
    ref = {
        "about": about(),
        "weights": "f16, computed in f32",
        "f16_arithmetic_agrees": f"{agree} of {2 * len(rows)} outputs",
        "differs_from_f32_weights": f"{changed} of {2 * len(rows)} outputs",
        "cases": rows,
    }
    (out / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"f16: {changed} outputs differ from the f32 weights'; f16 arithmetic agrees on {agree}")


def legacy(model):
    out = FIX / "tiny-marian-pth" / "legacy"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    twin = torch.load(FIX / "tiny-marian-pth" / "pytorch_model.bin")
    back = torch.load(out / "pytorch_model.bin")
    assert twin.keys() == back.keys() and all(torch.equal(twin[k], back[k]) for k in twin)
    print("legacy:", (out / "pytorch_model.bin").stat().st_size, "bytes,", len(back), "tensors")


def genconfig(model):
    out = FIX / "tiny-marian-genconfig"
    out.mkdir(exist_ok=True)
    config = json.loads((TINY / "config.json").read_text())
    config.update(num_beams=4, max_length=512, bad_words_ids=[[config["pad_token_id"]]])
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # A second banned token: the one the model's own beam-4 outputs use most.
    used = Counter(t for c in cases() for t in c["beam4"]["ids"][1:-1])
    banned = next(t for t, _ in used.most_common() if t not in (config["pad_token_id"], config["eos_token_id"]))
    gen = model.generation_config
    gen.num_beams = 6
    gen.max_length = 24
    gen.bad_words_ids = [[config["pad_token_id"]], [banned]]
    gen.renormalize_logits = True
    gen.save_pretrained(out)
    model.generation_config = transformers.GenerationConfig.from_pretrained(out)
    rows, renorm_matters = [], 0
    for case in cases():
        row = {"text": case["text"], "ids": case["ids"]}
        row["default"] = generate(model, case["ids"])
        row["greedy"] = generate(model, case["ids"], num_beams=1)
        row["no_renormalize"] = generate(model, case["ids"], renormalize_logits=False)
        renorm_matters += row["no_renormalize"] != row["default"]
        rows.append(row)
    ref = {
        "about": about(),
        "banned": banned,
        "renormalize_changes": f"{renorm_matters} of {len(rows)} outputs",
        "cases": rows,
    }
    (out / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"genconfig: banned {banned}; renormalize_logits changes {renorm_matters} of {len(rows)}")


def dtypes():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(4, 6, generator=g)
    big = torch.randn(5, 7, generator=g)
    d = {
        "f32": base.clone(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "f64": base.double(),
        "transposed": big.t(),
        "slice": big[1:4, 2:6],
        "scalar": torch.tensor(2.5),
        "long": torch.arange(5),
    }
    d["shared"] = d["f32"]
    path = FIX / "pth-legacy-dtypes.bin"
    torch.save(d, path, _use_new_zipfile_serialization=False)
    values = {k: {"shape": list(v.shape), "values": v.float().flatten().tolist()} for k, v in d.items() if v.is_floating_point()}
    path.with_suffix(".json").write_text(json.dumps({"about": about(), "tensors": values}, indent=1))
    print("dtypes:", path.stat().st_size, "bytes")


def main():
    model = MarianMTModel.from_pretrained(TINY, dtype=torch.float32).eval()
    legacy(model)
    dtypes()
    f16(MarianMTModel.from_pretrained(TINY, dtype=torch.float32).eval())
    genconfig(model)


if __name__ == "__main__":
    main()
