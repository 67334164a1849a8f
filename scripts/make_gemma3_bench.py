#!/usr/bin/env python3
"""Makes a Gemma-3-1B-shaped GGUF with random weights, quantized by llama.cpp to Q4_0 as Google's
QAT file is, for benchmarking the path the `gemma-3-1b-it` card takes (the real file is gated
and no machine here reaches the hub).

Shapes are Gemma 3 1B's: 26 layers, width 1152, 4 query heads and 1 key-value head of 256, FFN
6912, sliding window 512 (five layers in six), the output tied to the 262144-token embeddings.
The tokenizer is the real Gemma 3 one, copied from the test model (scripts/test-model.sh).

Which types: the card's file, `gemma-3-1b-it-q4_0.gguf`, is 1,003,541,152 bytes. Its layer
weights (697M parameters) in Q4_0 take 392 MB; the 262144 x 1152 embedding table is 302M
parameters, so the rest (611 MB, of which a few MB are the tokenizer) is that table in 16-bit
floats, not Q4_0 (170 MB) or Q8_0 (321 MB). So the weights are written as F16 and llama.cpp's
own quantizer makes Q4_0 of every layer weight with `token_embedding_type = F16` (`--embd
f16` writes the same thing; `--embd q8_0` gives what `llama-quantize ... Q4_0` picks by
default for this width, Q8_0).

The text it generates is noise; only speed and memory mean anything. About 2 minutes, 3 GB of
disk and 5 GB of memory; not run in CI:
    LLAMA_CPP_LIB_PATH=... python3 scripts/make_gemma3_bench.py --out /tmp/gemma3-bench
"""
import argparse
import ctypes
import pathlib
import sys

import gguf
import llama_cpp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
HP = {
    "context_length": 32768,
    "embedding_length": 1152,
    "block_count": 26,
    "feed_forward_length": 6912,
    "head_count": 4,
    "head_count_kv": 1,
    "head_dim": 256,
    "sliding_window": 512,
    "layer_norm_rms_epsilon": 1e-6,
    "rope_freq_base": 1000000.0,
}
LLAMA_FTYPE_MOSTLY_Q4_0 = 2
GGML_TYPE = {"f16": 1, "q8_0": 8}


def test_model():
    out = ROOT / "scripts" / "test-model.sh"
    import subprocess

    return subprocess.run(["bash", str(out)], check=True, capture_output=True,
                          text=True).stdout.strip()


def weights(rng, n_vocab):
    d, ff, hd = HP["embedding_length"], HP["feed_forward_length"], HP["head_dim"]
    dq, dkv = HP["head_count"] * hd, HP["head_count_kv"] * hd

    def normal(*shape, std=0.02):
        return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(std)

    def norm(n):
        return (1.0 + normal(n, std=0.1)).astype(np.float32)

    yield "token_embd.weight", normal(n_vocab, d)
    for i in range(HP["block_count"]):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", norm(d)
        yield p + "attn_q.weight", normal(dq, d)
        yield p + "attn_k.weight", normal(dkv, d)
        yield p + "attn_v.weight", normal(dkv, d)
        yield p + "attn_q_norm.weight", norm(hd)
        yield p + "attn_k_norm.weight", norm(hd)
        yield p + "attn_output.weight", normal(d, dq)
        yield p + "post_attention_norm.weight", norm(d)
        yield p + "ffn_norm.weight", norm(d)
        yield p + "ffn_gate.weight", normal(ff, d)
        yield p + "ffn_up.weight", normal(ff, d)
        yield p + "ffn_down.weight", normal(d, ff)
        yield p + "post_ffw_norm.weight", norm(d)
    yield "output_norm.weight", norm(d)


def write_f16(path, tok):
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_name("gemma-3-1b-shape (random weights, benchmark only)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(HP["context_length"])
    w.add_embedding_length(HP["embedding_length"])
    w.add_block_count(HP["block_count"])
    w.add_feed_forward_length(HP["feed_forward_length"])
    w.add_head_count(HP["head_count"])
    w.add_head_count_kv(HP["head_count_kv"])
    w.add_key_length(HP["head_dim"])
    w.add_value_length(HP["head_dim"])
    w.add_sliding_window(HP["sliding_window"])
    w.add_layer_norm_rms_eps(HP["layer_norm_rms_epsilon"])
    w.add_rope_freq_base(HP["rope_freq_base"])
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tok["tokens"])
    w.add_token_scores(tok["scores"])
    w.add_token_types(tok["token_type"])
    w.add_bos_token_id(tok["bos_token_id"])
    w.add_eos_token_id(tok["eos_token_id"])
    w.add_unk_token_id(tok["unknown_token_id"])
    w.add_pad_token_id(tok["padding_token_id"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    rng = np.random.default_rng(0)
    for name, arr in weights(rng, len(tok["tokens"])):
        w.add_tensor(name, arr.astype(np.float16) if arr.ndim == 2 else arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenizer(path):
    r = gguf.GGUFReader(path)
    keys = ["tokens", "scores", "token_type", "bos_token_id", "eos_token_id",
            "unknown_token_id", "padding_token_id"]
    return {k: r.fields["tokenizer.ggml." + k].contents() for k in keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--embd", choices=sorted(GGML_TYPE), default="f16",
                    help="type of the embedding table (default f16, as Google's QAT file)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(test_model())
    f16 = args.out / "gemma3-1b-shape-f16.gguf"
    out = args.out / f"gemma3-1b-shape-q4_0-embd-{args.embd}.gguf"
    write_f16(f16, tok)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_0
    params.token_embedding_type = GGML_TYPE[args.embd]
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed: {rc}")
    f16.unlink()
    print(out)


if __name__ == "__main__":
    main()
