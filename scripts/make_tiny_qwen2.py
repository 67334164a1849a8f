#!/usr/bin/env python3
"""Makes a tiny, randomly initialised Qwen2 chat model and llama.cpp's reference outputs for it.

Writes
  tests/fixtures/tiny-qwen2/tiny-qwen2.gguf   a 2-layer Qwen2 (64 wide, 4 query / 2 KV heads,
      q/k/v biases, untied output) with random Q8_0 weights and a byte-level BPE vocabulary of 512
      tokens (256 byte symbols, 253 merges learned from the first lines of the WMT17 tr/en test
      sets, <|endoftext|> <|im_start|> <|im_end|>), in the GGUF layout that llama.cpp's `qwen2`
      architecture and candle-transformers' `quantized_qwen2` both read;
  tests/fixtures/tiny-qwen2/reference.json    llama.cpp's token ids for a set of strings and,
      for three ChatML prompts, the top-5 (id, logit) and greedy choice of 8 decoding steps,
      once with llama.cpp's default f16 KV cache (`model_cases`) and once with an f32 KV cache
      (`model_cases_f32_kv`), which is what candle keeps and so the closer reference.

The weights come from a seeded numpy RNG and the tokenizer is trained on a fixed corpus in a
fixed order, so a rerun rewrites both files byte for byte. Regenerate with

    /opt/llref/bin/python scripts/make_tiny_qwen2.py

using the venv that scripts/record_llamacpp.py describes (llama-cpp-python 0.3.36, numpy,
gguf 0.19.0) plus `/opt/llref/bin/pip install tokenizers` (0.23).
"""
import hashlib
import json
import os
import pathlib

# Before the Rust-backed libraries start their thread pools: one thread, same result every run.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import gguf  # noqa: E402
import llama_cpp  # noqa: E402
import numpy as np  # noqa: E402
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests/fixtures/tiny-qwen2"
GGUF_PATH = OUT_DIR / "tiny-qwen2.gguf"
REF_PATH = OUT_DIR / "reference.json"
CORPUS = [ROOT.parent / "shared/eval/newstest2017.tr", ROOT.parent / "shared/eval/newstest2017.en"]
CORPUS_LINES = 2000  # from each file

# Picked once from seeds 0..299 as the one whose 24 greedy steps (3 prompts x 8) have the widest
# smallest top-1/top-2 logit margin (0.19), so that an argmax can't flip on the ~0.1 logit noise
# that Q8_0 activation rounding turns llama.cpp's f16 KV cache into. Changing the prompts, the
# corpus or the scales below changes the margins: recheck them.
SEED = 121
N_VOCAB = 512
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
N_MERGES = N_VOCAB - 256 - len(SPECIALS)
HP = {
    "context_length": 256,
    "embedding_length": 64,
    "block_count": 2,
    "feed_forward_length": 128,
    "head_count": 4,
    "head_count_kv": 2,
    "layer_norm_rms_epsilon": 1e-6,
    "rope_freq_base": 10000.0,
}
STEPS = 8
# Standard deviations of the random weights (norm weights are 1 + N(0, STD["norm"])).
STD = {"embd": 0.5, "attn": 0.15, "bias": 0.2, "ffn": 0.15, "ffn_down": 0.1, "output": 0.25,
       "norm": 0.1}

# Qwen2's pre-tokenizer split (tokenizer.json of Qwen2/2.5; llama.cpp's and candle's "qwen2").
QWEN2_SPLIT = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+"
               r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen2-instruct's ChatML template without its default system prompt. The '\n' inside the Jinja
# string literals are Jinja escapes, as in Qwen's own template.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TEXT_CASES = [
    "İ ı ş ğ ü ö ç Ş Ğ Ü Ö Ç",
    "İstanbul'da ışıklar söndü, Iğdır'da ılık bir gün.",
    "“Türkçe” ‘tırnak’ «işaretleri» ve 'tek tırnak'",
    "3,5 puan, %12 artış, 1.250.000 TL, 2025-09-03, saat 14.30",
    "Satır bir\nSatır iki\n\nParagraf üç\n\n\n",
    "Windows satırı\r\nikinci satır\r\n",
    "  iki boşluk   üç boşluk    dört ",
    "\tSekme ve\u00a0bölünmez boşluk\u200bsıfır genişlik",
    "Merhaba 👋 dünya — emoji ve uzun tire…",
    "I don't think they'll say it's over; WE'RE SURE I'M RIGHT, you've said.",
    "The summit in Beijing was hosted by China on Wednesday.",
    "Metinde <|im_end|> yazıyor ama bu bir işaret değil.",
    "Rusya Devlet Başkanı Vladimir Putin, Kuzey Kore lideri Kim Jong Un ile Çin'in başkenti Pekin'de bir araya geldi.",
]
SPECIAL_CASES = [
    "<|im_start|>system\nSen bir çevirmensin.<|im_end|>\n<|im_start|>user\nMerhaba<|im_end|>\n<|im_start|>assistant\n",
    "Metin bitti.<|im_end|><|endoftext|> <|im_start|>",
]
MODEL_CASES = [
    [{"role": "user", "content": "Çin, Rusya ile zirveye ev sahipliği yaptı."}],
    [{"role": "system", "content": "You translate Turkish news into English."},
     {"role": "user", "content": "Kremlin Sarayı'ndan yapılan açıklamada, görüşmenin 3 Eylül'de gerçekleştiği bildirildi."}],
    [{"role": "user", "content": "Summarize: the summit was held in Beijing."}],
]


def bytes_to_unicode():
    """GPT-2's byte -> printable character table, in GPT-2's (and Qwen's) vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


def train_tokenizer():
    """Byte-level BPE merges learned on the corpus with Qwen2's split; returns (tokens, merges)."""
    lines = []
    for path in CORPUS:
        with open(path, encoding="utf-8") as f:
            lines += [line.rstrip("\n") for _, line in zip(range(CORPUS_LINES), f)]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=256 + N_MERGES,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(lines, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
    assert len(merges) == N_MERGES, len(merges)

    # Qwen's layout: the 256 byte symbols, then one token per merge in merge order, specials last.
    tokens = [c for _, c in bytes_to_unicode()]
    known = set(tokens)
    for a, b in merges:
        assert a in known and b in known and a + b not in known, (a, b)
        tokens.append(a + b)
        known.add(a + b)
    tokens += SPECIALS
    assert len(tokens) == N_VOCAB
    return tokens, [f"{a} {b}" for a, b in merges]


def random_weights():
    """Qwen2 weights as numpy arrays in PyTorch layout (out_features, in_features)."""
    rng = np.random.default_rng(SEED)
    d, ff = HP["embedding_length"], HP["feed_forward_length"]
    hd = d // HP["head_count"]
    dkv = hd * HP["head_count_kv"]

    def normal(*shape, std):
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    def norm():
        return (1.0 + normal(d, std=STD["norm"])).astype(np.float32)

    w = {"token_embd.weight": normal(N_VOCAB, d, std=STD["embd"])}
    for i in range(HP["block_count"]):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm()
        w[p + "attn_q.weight"] = normal(d, d, std=STD["attn"])
        w[p + "attn_q.bias"] = normal(d, std=STD["bias"])
        w[p + "attn_k.weight"] = normal(dkv, d, std=STD["attn"])
        w[p + "attn_k.bias"] = normal(dkv, std=STD["bias"])
        w[p + "attn_v.weight"] = normal(dkv, d, std=STD["attn"])
        w[p + "attn_v.bias"] = normal(dkv, std=STD["bias"])
        w[p + "attn_output.weight"] = normal(d, d, std=STD["attn"])
        w[p + "ffn_norm.weight"] = norm()
        w[p + "ffn_gate.weight"] = normal(ff, d, std=STD["ffn"])
        w[p + "ffn_up.weight"] = normal(ff, d, std=STD["ffn"])
        w[p + "ffn_down.weight"] = normal(d, ff, std=STD["ffn_down"])
    w["output_norm.weight"] = norm()
    w["output.weight"] = normal(N_VOCAB, d, std=STD["output"])
    return w


def write_gguf(tokens, merges, weights):
    w = gguf.GGUFWriter(str(GGUF_PATH), "qwen2")
    w.add_name("tiny-qwen2-instruct (random weights)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
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
    w.add_token_types([gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges(merges)
    eot = tokens.index("<|endoftext|>")
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_pad_token_id(eot)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    for name, arr in weights.items():
        if arr.ndim == 2 and arr.shape[1] % 32 == 0:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def render_chatml(messages):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    text += "<|im_start|>assistant\n"
    try:  # The template in the file must give the same prompt.
        import jinja2
        rendered = jinja2.Environment().from_string(CHAT_TEMPLATE).render(
            messages=messages, add_generation_prompt=True)
        assert rendered == text, (rendered, text)
    except ImportError:
        pass
    return text


def load(**kv_cache_types):
    return llama_cpp.Llama(model_path=str(GGUF_PATH), n_ctx=HP["context_length"], n_threads=2,
                           logits_all=True, verbose=False, seed=0, flash_attn=False,
                           **kv_cache_types)


def tokenizer_cases(llm):
    tok_cases = []
    for text in TEXT_CASES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        tok_cases.append({"text": text, "special": False, "ids": ids})
    for text in SPECIAL_CASES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        tok_cases.append({"text": text, "special": True, "ids": ids})
    return tok_cases


def greedy_cases(llm):
    model_cases = []
    for messages in MODEL_CASES:
        prompt = render_chatml(messages)
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        steps = []
        for _ in range(STEPS):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            top = np.argsort(-logits, kind="stable")[:5]
            steps.append({
                "top": [[int(i), round(float(logits[i]), 4)] for i in top],
                "chosen": int(top[0]),
            })
            llm.eval([int(top[0])])
        model_cases.append({"messages": messages, "prompt": prompt, "prompt_ids": ids,
                            "steps": steps})
    return model_cases


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tokens, merges = train_tokenizer()
    write_gguf(tokens, merges, random_weights())
    sha = hashlib.sha256(GGUF_PATH.read_bytes()).hexdigest()
    llm = load()
    assert llm.n_vocab() == N_VOCAB
    tok_cases = tokenizer_cases(llm)
    model_cases = greedy_cases(llm)
    llm.close()
    llm = load(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    model_cases_f32_kv = greedy_cases(llm)
    llm.close()
    out = {
        "generator": "scripts/make_tiny_qwen2.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": GGUF_PATH.name,
        "model_sha256": sha,
        "hyperparameters": {**HP, "vocab_size": N_VOCAB, "seed": SEED},
        "kv_cache": "f16 (llama.cpp default); model_cases_f32_kv: f32",
        "flash_attn": False,
        "tokenizer_cases": tok_cases,
        "model_cases": model_cases,
        "model_cases_f32_kv": model_cases_f32_kv,
    }
    REF_PATH.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GGUF_PATH.relative_to(ROOT)} ({GGUF_PATH.stat().st_size} bytes, sha256 {sha})")
    print(f"wrote {REF_PATH.relative_to(ROOT)}: {len(tok_cases)} tokenizer cases, "
          f"{len(model_cases)} model cases")


if __name__ == "__main__":
    main()
