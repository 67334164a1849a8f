#!/usr/bin/env python3
"""Records llama.cpp's reference outputs for the Gemma 3 270M test model.

Writes tests/fixtures/llamacpp-gemma3-270m.json with
  - tokenizer cases: llama.cpp's token ids for strings with Turkish letters, quotes, numbers,
    newlines, chat markers and every block of the sample article;
  - model cases: few-shot translation prompts (rendered from prompts/translate-fewshot.jinja),
    their token ids, and for each greedy step llama.cpp's top-10 (id, logit) and chosen token.

Run once by hand, not in CI (llama-cpp-python builds llama.cpp from source, ~25 minutes on two
cores):
    python3 -m venv /opt/llref
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF" \
      /opt/llref/bin/pip install llama-cpp-python==0.3.36 jinja2 numpy
    /opt/llref/bin/python scripts/record_llamacpp.py "$TERCUMAN_TEST_GGUF"
"""
import hashlib
import json
import pathlib
import sys

import jinja2
import llama_cpp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEPS = 16

TEXT_CASES = [
    "İ ı ş ğ ü ö ç Ş Ğ Ü Ö Ç",
    "İstanbul'da ışıklar söndü, Iğdır'da ılık bir gün.",
    'Putin, "çok mutlu" olduğunu belirtti.',
    "“Türkçe” ‘tırnak’ «işaretleri» ve 'tek tırnak'",
    "3,5 puan, %12 artış, 1.250.000 TL, 2025-09-03, saat 14.30",
    "Satır bir\nSatır iki\n\nParagraf üç\n\n\n",
    "  iki boşluk   üç boşluk    dört",
    "\tSekme ve\u00a0bölünmez boşluk\u200bsıfır genişlik",
    "Prof. Dr. Ahmet Yılmaz, T.C. ve A.Ş. kısaltmaları; 1. Dünya Savaşı",
    "Merhaba 👋 dünya — emoji ve uzun tire…",
    "Metinde <end_of_turn> yazıyor ama bu bir işaret değil.",
]
SPECIAL_CASES = [
    "<start_of_turn>user\nMerhaba<end_of_turn>\n<start_of_turn>model\n",
]
MODEL_SENTENCES = [
    "Rusya Devlet Başkanı Vladimir Putin, Kuzey Kore lideri Kim Jong Un ile Çin'in başkenti Pekin'de bir araya geldi.",
    "Çin, Rusya ile Kuzey Kore zirvesine ev sahipliği yaptı.",
    "Kremlin Sarayı'ndan yapılan açıklamada, görüşmenin Putin'in ikametgahı olan \"Diaoyutai Devlet Konukevi\"nde gerçekleştiği bildirildi.",
]


def article_blocks():
    text = (ROOT / "tests/fixtures/pekin-zirvesi.tr.txt").read_text(encoding="utf-8")
    blocks = [b.strip() for b in text.split("\n\n")]
    return [" ".join(line.strip() for line in b.splitlines()) for b in blocks if b]


def main():
    gguf = sys.argv[1]
    sha = hashlib.sha256(pathlib.Path(gguf).read_bytes()).hexdigest()
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=1024, n_threads=2, n_batch=512,
                          logits_all=True, verbose=False, seed=0,
                          flash_attn=False)
    tok_cases = []
    for text in TEXT_CASES + article_blocks():
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        tok_cases.append({"text": text, "special": False, "ids": ids})
    for text in SPECIAL_CASES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        tok_cases.append({"text": text, "special": True, "ids": ids})

    env = jinja2.Environment()  # drops one trailing newline, like minijinja's default
    tmpl = env.from_string((ROOT / "prompts/translate-fewshot.jinja").read_text(encoding="utf-8"))
    model_cases = []
    for sentence in MODEL_SENTENCES:
        prompt = tmpl.render(text=sentence)
        ids = [llm.token_bos()] + llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        steps = []
        for _ in range(STEPS):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            top = np.argsort(-logits)[:10]
            steps.append({
                "top": [[int(i), round(float(logits[i]), 4)] for i in top],
                "chosen": int(top[0]),
            })
            llm.eval([int(top[0])])
        model_cases.append({"sentence": sentence, "prompt_ids": ids, "steps": steps})

    out = {
        "generator": "scripts/record_llamacpp.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model_sha256": sha,
        "kv_cache": "f16 (llama.cpp default)",
        "flash_attn": False,
        "tokenizer_cases": tok_cases,
        "model_cases": model_cases,
    }
    path = ROOT / "tests/fixtures/llamacpp-gemma3-270m.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(tok_cases)} tokenizer cases, {len(model_cases)} model cases")


if __name__ == "__main__":
    main()
