#!/usr/bin/env python3
"""Builds the tiny Marian test model and records what the reference implementation does with it.

The model has the shape rules of Helsinki-NLP/opus-mt-tc-big-tr-en (ReLU, post-norm layers,
sinusoidal positions, scaled embeddings, one vocabulary shared by encoder, decoder and output
layer, pad = decoder start = last id) at tiny sizes, with random weights. Its two SentencePiece
models (Unigram, nmt_nfkc normalisation, so with a precompiled charsmap) are trained here on the
Turkish and English sides of ../shared/eval. The directory is laid out as the hub ships a Marian
model: config.json, generation_config.json, model.safetensors, source.spm, target.spm,
vocab.json, tokenizer_config.json.

reference.json records, for each input, transformers' MarianTokenizer pieces and ids, and the ids
and text of MarianMTModel.generate, greedy and beam 4 (our batched output is tested against our
own one-at-a-time output, and that against these).

tiny-marian-pth/pytorch_model.bin holds the same weights in PyTorch's format.

Run once, not in CI (needs torch, transformers, sentencepiece from PyPI):
    python3 -m venv /opt/mref && /opt/mref/bin/pip install torch transformers sentencepiece protobuf
    /opt/mref/bin/python scripts/make_tiny_marian.py [--out DIR] [--full-size]

--full-size writes a tc-big-shaped model (d_model 1024, 6+6 layers, 16 heads, FFN 4096, a
57 000-entry vocabulary) with random weights for benchmarks; it is not committed and records
nothing.
"""

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVAL = (REPO / ".." / "shared" / "eval").resolve()

# Inputs that exercise the tokenizer: Turkish letters, dotted and dotless i, quotes, numbers,
# abbreviations, characters the normalisation rules rewrite (full-width letters, a ligature, a
# no-break space), repeated spaces, characters the vocabulary has never seen, and real news sentences.
EDGE_CASES = [
    "İstanbul'da ılık bir gün.",
    "Şişli, Üsküdar, Göztepe ve Çağlayan'da ÖĞRENCİLER ışıkları söndürdü.",
    "“Barış” dedi, «hemen» ve 'şimdi'.",
    "Enflasyon %3,5 arttı; 1. Dünya Savaşı 1914'te başladı.",
    "Prof. Dr. Ayşe Yılmaz, T.C. Merkez Bankası A.Ş. toplantısında konuştu.",
    "Ｆｕｌｌ ｗｉｄｔｈ ve ﬁ bağlı harf\u00a0ile   çok    boşluk.",
    "Emoji 😀 ve 漢字 bilinmiyor.",
    "A",
]


def sentences(path, n, rng, min_len=20, max_len=160):
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
    lines = [l for l in lines if min_len <= len(l) <= max_len]
    return rng.sample(lines, n)


def normalization_rules(path):
    """A small NFKC-like rule table (full-width ASCII, the fi/fl ligatures, no-break spaces).

    The nmt_nfkc table that real models carry makes a 240 KB .spm; these few rules go through
    the same precompiled-charsmap code and keep the fixture small."""
    rules = [(f"{c:X}", f"{c - 0xFEE0:X}") for c in range(0xFF01, 0xFF5F)]
    rules += [("FB01", "66 69"), ("FB02", "66 6C"), ("A0", "20"), ("202F", "20"), ("2026", "2E 2E 2E")]
    path.write_text("".join(f"{a}\t{b}\n" for a, b in rules), encoding="utf-8")


def train_spm(text_path, prefix, vocab_size, rules):
    spm.SentencePieceTrainer.train(
        input=str(text_path),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=0.9995,
        normalization_rule_tsv=str(rules),
        input_sentence_size=20000,
        shuffle_input_sentence=False,
        num_threads=2,
        seed_sentencepiece_size=100000,
        minloglevel=2,
    )


def build_vocab(source_model, target_model, drop, pad_to=0):
    """A joint vocabulary as Marian ships it: pieces of both sides, eos and unk early, pad last.

    A few source pieces are left out on purpose: MarianTokenizer maps them to <unk>."""
    pieces = []
    seen = set()
    for model in (source_model, target_model):
        sp = spm.SentencePieceProcessor(model_file=str(model))
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if sp.is_control(i) or sp.is_unknown(i) or p in seen or p in drop:
                continue
            seen.add(p)
            pieces.append(p)
    # A full-size model gets tc-big's vocabulary size (about 57 000): entries no text maps to,
    # so that the embedding table and output layer cost what the real model's do.
    filler = [f"▁<filler{i}>" for i in range(max(0, pad_to - len(pieces) - 5))]
    vocab = {}
    for p in ["▁,", "▁.", "</s>", "<unk>"] + pieces + filler + ["<pad>"]:
        vocab.setdefault(p, len(vocab))
    return vocab


def write_pth(model, pth_dir):
    """The same weights as pytorch_model.bin, the format older hub repos (the OPUS-MT cards) ship,
    with every tied name present as torch.save writes a whole state dict."""
    pth_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), pth_dir / "pytorch_model.bin")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "tiny-marian"))
    ap.add_argument("--full-size", action="store_true")
    ap.add_argument("--seed", type=int, default=20261128)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)

    tr_lines = (EVAL / "newstest2017.tr").read_text(encoding="utf-8").splitlines()
    en_lines = (EVAL / "newstest2017.en").read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tr.txt").write_text("\n".join(tr_lines), encoding="utf-8")
        (tmp / "en.txt").write_text("\n".join(en_lines), encoding="utf-8")
        normalization_rules(tmp / "rules.tsv")
        size = (4000, 4000) if args.full_size else (500, 350)
        train_spm(tmp / "tr.txt", out / "source", size[0], tmp / "rules.tsv")
        train_spm(tmp / "en.txt", out / "target", size[1], tmp / "rules.tsv")
    os.replace(out / "source.model", out / "source.spm")
    os.replace(out / "target.model", out / "target.spm")
    for f in ("source.vocab", "target.vocab"):
        (out / f).unlink()
    vocab = build_vocab(
        out / "source.spm",
        out / "target.spm",
        drop={"▁Türkiye", "▁ve"},
        pad_to=57000 if args.full_size else 0,
    )
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")

    eos, pad = vocab["</s>"], vocab["<pad>"]
    if args.full_size:
        dims = dict(d_model=1024, layers=6, heads=16, ffn=4096)
    else:
        dims = dict(d_model=32, layers=2, heads=4, ffn=64)
    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        d_model=dims["d_model"],
        encoder_layers=dims["layers"],
        decoder_layers=dims["layers"],
        encoder_attention_heads=dims["heads"],
        decoder_attention_heads=dims["heads"],
        encoder_ffn_dim=dims["ffn"],
        decoder_ffn_dim=dims["ffn"],
        activation_function="relu",
        max_position_embeddings=512,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=eos,
        forced_eos_token_id=eos,
        bos_token_id=0,
        dropout=0.1,
        init_std=0.02,
    )
    model = MarianMTModel(config).eval()
    # Random weights large enough that the logits are spread (no near-ties for greedy and beam
    # search to break differently), and a bias towards </s> so that some outputs end on their
    # own and others run to the length limit.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
            elif p.dim() == 2:
                p.normal_(0.0, 0.2 if "embed" not in name else 0.7)
            else:
                p.normal_(0.0, 0.05)
        model.final_logits_bias[0, eos] = float(os.environ.get("EOS_BIAS", "5.0"))
    model.generation_config.num_beams = 4
    model.generation_config.max_length = 512
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.forced_eos_token_id = eos
    model.generation_config.decoder_start_token_id = pad
    model.generation_config.pad_token_id = pad
    model.generation_config.eos_token_id = eos
    model.generation_config.bos_token_id = 0
    model.save_pretrained(out, safe_serialization=True)
    # The reference is what the saved files give: reloading ties the output layer to the
    # shared embeddings, as any user of the directory gets it.
    model = MarianMTModel.from_pretrained(out).eval()
    write_pth(model, out.parent / (out.name + "-pth"))

    tok = MarianTokenizer(
        source_spm=str(out / "source.spm"),
        target_spm=str(out / "target.spm"),
        vocab=str(out / "vocab.json"),
        source_lang="tr",
        target_lang="en",
    )
    tok.save_pretrained(out)
    for f in ("special_tokens_map.json",):
        if (out / f).exists():
            (out / f).unlink()
    if args.full_size:
        print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters")
        return

    inputs = EDGE_CASES + sentences(EVAL / "newstest2018.tr", 12, rng) + sentences(EVAL / "flores200-devtest.tr", 4, rng)
    cases = []

    def max_new(n_src):
        # The length limit our decoder uses: twice the source tokens plus 10.
        return 2 * n_src + 10

    with torch.no_grad():
        for text in inputs:
            ids = tok(text)["input_ids"]
            case = {"text": text, "pieces": tok.convert_ids_to_tokens(ids), "ids": ids}
            enc = torch.tensor([ids])
            for name, beams in (("greedy", 1), ("beam4", 4)):
                gen = model.generate(
                    enc,
                    attention_mask=torch.ones_like(enc),
                    num_beams=beams,
                    do_sample=False,
                    max_new_tokens=max_new(len(ids)),
                    output_scores=True,
                    return_dict_in_generate=True,
                )
                seq = gen.sequences[0].tolist()
                case[name] = {
                    "ids": seq,
                    "text": tok.decode(seq, skip_special_tokens=True),
                }
                if beams == 1:
                    # The smallest top-2 gap on the greedy path: a near-tie would make the
                    # recorded ids fragile.
                    gaps = []
                    for s in gen.scores:
                        top = torch.topk(s[0], 2).values
                        gaps.append(float(top[0] - top[1]))
                    case[name]["min_top2_gap"] = min(gaps)
            cases.append(case)

    ref = {
        "about": "made by scripts/make_tiny_marian.py with transformers "
        + __import__("transformers").__version__
        + ", torch "
        + torch.__version__
        + ", sentencepiece "
        + spm.__version__,
        "max_new_tokens": "2 * source ids + 10",
        "cases": cases,
    }
    (out / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=1), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({total} bytes); min greedy top-2 gap", min(c["greedy"]["min_top2_gap"] for c in cases))


if __name__ == "__main__":
    main()
