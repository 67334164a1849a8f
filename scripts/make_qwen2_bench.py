#!/usr/bin/env python3
"""Makes a Qwen2.5-1.5B-shaped GGUF with random weights, quantized by llama.cpp to Q4_K_M, for
benchmarking the Qwen2 path (no real Qwen GGUF can be downloaded here).

Shapes are Qwen2.5 1.5B Instruct's: 28 layers, width 1536, 12 query / 2 key-value heads, FFN
8960, q/k/v biases, a 151936-token vocabulary with the output tied to the embeddings, RoPE base
1e6. The vocabulary is the tiny model's byte-level BPE (scripts/make_tiny_qwen2.py: 256 bytes,
253 merges, the ChatML specials) padded with unused tokens to full size, so the embedding table
and the output projection have their real cost. The weights are written as F16, then
llama.cpp's own quantizer (`llama_model_quantize`, LLAMA_FTYPE_MOSTLY_Q4_K_M) makes the file,
with the same mix of Q4_K, Q6_K and others as a real Q4_K_M download.

The text it generates is noise; only speed and memory mean anything. About 3 minutes, 4 GB of
disk and 6 GB of memory; not run in CI:
    /opt/llref/bin/python scripts/make_qwen2_bench.py --out /tmp/qwen2-bench
    /opt/llref/bin/python scripts/bench_llamacpp.py --model /tmp/qwen2-bench/qwen2-1.5b-shape-q4_k_m.gguf \\
        --prompt-file F --gen-tokens 64 --threads 2

With --tiny it writes the test fixture tests/fixtures/tiny-qwen2-kquant.gguf instead: the same
kind of file (tied output, Q4_K_M from llama.cpp's quantizer) at 2 layers, width 256 and the
512-token vocabulary, for the test that runs our Qwen2 against candle's `quantized_qwen2` on
the path a real Qwen2.5 file takes (k-quant weights, tied output); see tests/qwen2_parity.rs.
    /opt/llref/bin/python scripts/make_qwen2_bench.py --tiny
"""
import argparse
import ctypes
import pathlib
import sys

import gguf
import llama_cpp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_tiny_qwen2 as tiny  # noqa: E402

HP = {
    "context_length": 32768,
    "embedding_length": 1536,
    "block_count": 28,
    "feed_forward_length": 8960,
    "head_count": 12,
    "head_count_kv": 2,
    "layer_norm_rms_epsilon": 1e-6,
    "rope_freq_base": 1000000.0,
}
TINY_HP = {
    "context_length": 256,
    "embedding_length": 256,
    "block_count": 2,
    "feed_forward_length": 512,
    "head_count": 4,
    "head_count_kv": 2,
    "layer_norm_rms_epsilon": 1e-6,
    "rope_freq_base": 1000000.0,
}
N_VOCAB = 151936
LLAMA_FTYPE_MOSTLY_Q4_K_M = 15


def weights(rng, n_vocab):
    d, ff = HP["embedding_length"], HP["feed_forward_length"]
    dkv = d // HP["head_count"] * HP["head_count_kv"]

    scale = 7.5 if HP["embedding_length"] <= 256 else 1.0  # tiny: weights of the tiny model's size

    def normal(*shape, std=0.02):
        std *= scale
        return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(std)

    def norm():
        return (1.0 + normal(d, std=0.1)).astype(np.float32)

    yield "token_embd.weight", normal(n_vocab, d)
    for i in range(HP["block_count"]):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", norm()
        yield p + "attn_q.weight", normal(d, d)
        yield p + "attn_q.bias", normal(d, std=0.1)
        yield p + "attn_k.weight", normal(dkv, d)
        yield p + "attn_k.bias", normal(dkv, std=0.1)
        yield p + "attn_v.weight", normal(dkv, d)
        yield p + "attn_v.bias", normal(dkv, std=0.1)
        yield p + "attn_output.weight", normal(d, d)
        yield p + "ffn_norm.weight", norm()
        yield p + "ffn_gate.weight", normal(ff, d)
        yield p + "ffn_up.weight", normal(ff, d)
        yield p + "ffn_down.weight", normal(d, ff)
    yield "output_norm.weight", norm()


def write_f16(path, tokens, merges):
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("qwen2.5-1.5b-shape (random weights, benchmark only)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(HP["context_length"])
    w.add_embedding_length(HP["embedding_length"])
    w.add_block_count(HP["block_count"])
    w.add_feed_forward_length(HP["feed_forward_length"])
    w.add_head_count(HP["head_count"])
    w.add_head_count_kv(HP["head_count_kv"])
    w.add_layer_norm_rms_eps(HP["layer_norm_rms_epsilon"])
    w.add_rope_freq_base(HP["rope_freq_base"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in tiny.SPECIALS else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges(merges)
    eot = tokens.index("<|endoftext|>")
    w.add_bos_token_id(eot)
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(eot)
    w.add_add_bos_token(False)
    w.add_chat_template(tiny.CHAT_TEMPLATE)
    rng = np.random.default_rng(0)
    for name, arr in weights(rng, len(tokens)):
        w.add_tensor(name, arr.astype(np.float16) if arr.ndim == 2 else arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path)
    ap.add_argument("--tiny", action="store_true", help="write the k-quant test fixture instead")
    args = ap.parse_args()
    tokens, merges = tiny.train_tokenizer()
    if args.tiny:
        HP.update(TINY_HP)
        f16 = tiny.ROOT / "tests/fixtures/tiny-qwen2-kquant-f16.gguf"
        out = tiny.ROOT / "tests/fixtures/tiny-qwen2-kquant.gguf"
    else:
        if args.out is None:
            ap.error("--out DIR is required (or --tiny)")
        args.out.mkdir(parents=True, exist_ok=True)
        tokens = tokens + [f"<unused_{i}>" for i in range(N_VOCAB - len(tokens))]
        f16 = args.out / "qwen2-1.5b-shape-f16.gguf"
        out = args.out / "qwen2-1.5b-shape-q4_k_m.gguf"
    write_f16(f16, tokens, merges)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed: {rc}")
    f16.unlink()
    print(out)


if __name__ == "__main__":
    main()
