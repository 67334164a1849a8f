#!/usr/bin/env python3
"""Trains a tiny Marian (OPUS-MT shape) Turkish->English model: a test fixture for int8 inference.

Random weights lack what trained weights have (a few large outlier values and channels, skewed
activations, peaked logits), so a fixture that measures whether int8-quantized inference agrees
with f32 inference must be trained, even weakly. This script trains one on one CPU thread within
a wall-clock budget.

The layout and conventions are those of scripts/make_tiny_marian.py (whose helpers it imports):
ReLU, post-norm layers, sinusoidal positions, scaled embeddings, one vocabulary shared by
encoder, decoder and output layer, pad = decoder start = last id; two SentencePiece Unigram
models with the same small NFKC-like normalisation table; a directory as the hub ships a Marian
model (config.json, generation_config.json, model.safetensors, source.spm, target.spm,
vocab.json, tokenizer_config.json).

Data: the Turkish-English pairs of ../shared/eval/newstest2017 and newstest2018 only (about 6000).
FLORES-200 devtest is held out: it is read only after training, to score the saved model
(greedy MarianMTModel.generate on its first 200 lines, sacreBLEU chrF and BLEU). --dev-size N
keeps the last N pairs of newstest2018 out of training to compare settings on them instead.

Training: AdamW, fixed seed, token-sized batches, label smoothing 0.1, linear warm-up then a
cosine decay over the wall-clock budget. Training stops once --budget-min minutes have passed
since the script started; then the model is saved and scored.

Defaults (d_model 96, 2+2 layers, 4 heads, FFN 384, 700+700 SentencePiece pieces giving a
joint vocabulary of about 1240, batches of 1200 padded tokens, Xavier initialisation, peak
learning rate 3e-3, dropout 0.05) were chosen on 6-minute runs scored on 300 held-out
newstest2018 pairs (--dev-size 300), never on FLORES: batches of 1500 and 800 tokens reached
a lower dev loss than 3000; 700+700 pieces beat 1000+1000 on dev loss per sentence and leave
model.safetensors at about 2.6 MB; Xavier beat transformers' normal(0, 0.02) (dev loss 4.05
against 4.12); dropout 0 with learning rate 3e-3 beat dropout 0.1 with 2e-3 (3.90 against
4.05). Decoder-input dropout (--dec-drop 0.2) and copied English sentences (--copy-share 0.3)
did not lower dev loss in 6 minutes and are off. On one thread, a tiny model's cost is about
linear in batch tokens, so smaller batches buy more updates; d_model 64 or 3 layers were no
faster per token than this shape.

A model this small, trained on so little for 20 minutes, is weak: mostly an English language
model that uses its source a little (the script prints the FLORES loss with each line's own
source and with another line's). For a quantization fixture that is enough: its weights and
activations have the trained structure that random ones lack.

Run once, not in CI (needs torch, transformers, sentencepiece, safetensors, sacrebleu):
    OMP_NUM_THREADS=1 nice -n 19 python3 scripts/train_tiny_marian.py [--out DIR] [--budget-min 20]
"""

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import sentencepiece as spm
import torch
import torch.nn.functional as F
import transformers
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_tiny_marian import EVAL, REPO, build_vocab, normalization_rules  # noqa: E402

T0 = time.monotonic()
FILES = ("config.json", "generation_config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json", "tokenizer_config.json")


def log(*a):
    print(f"[{time.monotonic() - T0:7.1f}s]", *a, flush=True)


def read_lines(name):
    return (EVAL / name).read_text(encoding="utf-8").splitlines()


def train_spm(text_path, prefix, vocab_size, rules, nmt_nfkc):
    """As make_tiny_marian.train_spm, on one thread."""
    norm = {"normalization_rule_name": "nmt_nfkc"} if nmt_nfkc else {"normalization_rule_tsv": str(rules)}
    spm.SentencePieceTrainer.train(
        input=str(text_path),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=0.9995,
        input_sentence_size=20000,
        shuffle_input_sentence=False,
        num_threads=1,
        seed_sentencepiece_size=100000,
        minloglevel=2,
        **norm,
    )


def make_tokenizer(out, train_tr, train_en, args):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "tr.txt").write_text("\n".join(train_tr), encoding="utf-8")
        (tmp / "en.txt").write_text("\n".join(train_en), encoding="utf-8")
        normalization_rules(tmp / "rules.tsv")
        train_spm(tmp / "tr.txt", out / "source", args.src_vocab, tmp / "rules.tsv", args.nmt_nfkc)
        train_spm(tmp / "en.txt", out / "target", args.tgt_vocab, tmp / "rules.tsv", args.nmt_nfkc)
    os.replace(out / "source.model", out / "source.spm")
    os.replace(out / "target.model", out / "target.spm")
    for f in ("source.vocab", "target.vocab"):
        (out / f).unlink()
    vocab = build_vocab(out / "source.spm", out / "target.spm", drop=set())
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
    tok = MarianTokenizer(
        source_spm=str(out / "source.spm"),
        target_spm=str(out / "target.spm"),
        vocab=str(out / "vocab.json"),
        source_lang="tr",
        target_lang="en",
    )
    return tok, vocab


def make_config(vocab, args):
    eos, pad = vocab["</s>"], vocab["<pad>"]
    return MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        d_model=args.d_model,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        decoder_attention_heads=args.heads,
        encoder_ffn_dim=args.ffn,
        decoder_ffn_dim=args.ffn,
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
        dropout=args.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        init_std=0.02,
    )


def batches(pairs, max_tokens, rng):
    """Token-sized batches: pairs of about the same length together, (padded source + padded
    target) tokens at most max_tokens; batch order shuffled."""
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]) + rng.random() * 3, len(pairs[i][1])))
    out, cur, ms, mt = [], [], 0, 0
    for i in order:
        s, t = len(pairs[i][0]), len(pairs[i][1])
        nms, nmt = max(ms, s), max(mt, t)
        if cur and (len(cur) + 1) * (nms + nmt) > max_tokens:
            out.append(cur)
            cur, nms, nmt = [], s, t
        cur.append(i)
        ms, mt = nms, nmt
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def collate(pairs, idx, pad):
    src = [pairs[i][0] for i in idx]
    tgt = [pairs[i][1] for i in idx]
    ls, lt = max(map(len, src)), max(map(len, tgt))
    input_ids = torch.full((len(idx), ls), pad, dtype=torch.long)
    labels = torch.full((len(idx), lt), -100, dtype=torch.long)
    dec_in = torch.full((len(idx), lt), pad, dtype=torch.long)
    for k, (s, t) in enumerate(zip(src, tgt)):
        input_ids[k, : len(s)] = torch.tensor(s)
        labels[k, : len(t)] = torch.tensor(t)
        dec_in[k, 1 : len(t)] = torch.tensor(t[:-1])  # decoder start = pad, then the target shifted
    return input_ids, (input_ids != pad).long(), dec_in, labels


def loss_of(model, batch, smoothing):
    input_ids, mask, dec_in, labels = batch
    logits = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=dec_in).logits
    v = logits.size(-1)
    loss = F.cross_entropy(logits.view(-1, v), labels.view(-1), ignore_index=-100, label_smoothing=smoothing, reduction="sum")
    return loss, int((labels != -100).sum())


def translate(model, tok, texts):
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tok(text)["input_ids"]
            enc = torch.tensor([ids])
            seq = model.generate(
                enc,
                attention_mask=torch.ones_like(enc),
                num_beams=1,
                do_sample=False,
                max_new_tokens=2 * len(ids) + 10,  # the length limit our decoder uses
            )[0].tolist()
            out.append(tok.decode(seq, skip_special_tokens=True))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "tiny-marian-trained"))
    ap.add_argument("--budget-min", type=float, default=20.0, help="wall-clock minutes from start to the end of training")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--src-vocab", type=int, default=700, help="Turkish SentencePiece pieces")
    ap.add_argument("--tgt-vocab", type=int, default=700, help="English SentencePiece pieces")
    ap.add_argument("--nmt-nfkc", action="store_true", help="SentencePiece's full nmt_nfkc table (about 240 KB per .spm)")
    ap.add_argument("--d-model", type=int, default=96)
    ap.add_argument("--layers", type=int, default=2, help="encoder layers, and as many decoder layers")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=384)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-tokens", type=int, default=1200, help="padded source+target tokens per batch")
    ap.add_argument("--max-len", type=int, default=128, help="pairs with a side longer than this many tokens are skipped")
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--init", choices=["xavier", "hf"], default="xavier", help="Linear layers: fairseq's Xavier, or transformers' normal(0, 0.02)")
    ap.add_argument("--copy-share", type=float, default=0.0, help="add this share of the English sentences as copy pairs")
    ap.add_argument("--dec-drop", type=float, default=0.0, help="share of decoder input tokens replaced by <unk> in training")
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--dev-size", type=int, default=0, help="hold the last N newstest2018 pairs out, for comparing settings")
    ap.add_argument("--flores-lines", type=int, default=200)
    args = ap.parse_args()
    transformers.logging.set_verbosity_error()  # not a warning per generate call about max_length
    transformers.utils.logging.disable_progress_bar()

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    budget_s = args.budget_min * 60.0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES + ("special_tokens_map.json",):
        if (out / name).exists():
            (out / name).unlink()

    # Training data: newstest2017 and newstest2018 only. FLORES stays unread until the model is saved.
    tr = read_lines("newstest2017.tr") + read_lines("newstest2018.tr")
    en = read_lines("newstest2017.en") + read_lines("newstest2018.en")
    assert len(tr) == len(en)
    raw = [(a.strip(), b.strip()) for a, b in zip(tr, en) if a.strip() and b.strip()]
    dev_raw = raw[len(raw) - args.dev_size :] if args.dev_size else []
    train_raw = raw[: len(raw) - args.dev_size]

    tok, vocab = make_tokenizer(out, [a for a, _ in train_raw], [b for _, b in train_raw], args)
    pad, unk = vocab["<pad>"], vocab["<unk>"]
    log(f"vocabulary: {len(vocab)} entries (source pieces {args.src_vocab}, target pieces {args.tgt_vocab})")

    def encode(rows):
        if not rows:
            return []
        src = tok([a for a, _ in rows])["input_ids"]
        tgt = tok(text_target=[b for _, b in rows])["input_ids"]
        return list(zip(src, tgt))

    train = [p for p in encode(train_raw) if len(p[0]) <= args.max_len and len(p[1]) <= args.max_len]
    n_pairs = len(train)
    if args.copy_share > 0:
        # Copied target sentences (Currey et al., 2017): an English sentence, cut by the Turkish
        # SentencePiece model, to itself. Teaches the cross-attention to find its place in the
        # source sooner, which names and numbers then use.
        en_rows = [(b, b) for _, b in train_raw]
        copies = [p for p in encode(rng.sample(en_rows, int(args.copy_share * len(en_rows)))) if len(p[0]) <= args.max_len and len(p[1]) <= args.max_len]
        train += copies
        log(f"copied English sentences: {len(copies)}")
    dev = encode(dev_raw)
    n_src = sum(len(s) for s, _ in train)
    n_tgt = sum(len(t) for _, t in train)
    log(f"training pairs: {n_pairs} of {len(train_raw)} (source tokens {n_src}, target tokens {n_tgt}); dev pairs {len(dev)}")

    config = make_config(vocab, args)
    model = MarianMTModel(config)
    with torch.no_grad():
        # Linear layers as fairseq initialises a transformer (Xavier uniform; query, key and value
        # with gain 1/sqrt(2); zero biases). transformers' init_std 0.02 is about right at
        # d_model 1024, but at d_model 96 it is 5x too small: attention stays uniform for
        # thousands of steps and the model learns an English language model that ignores the
        # source.
        if args.init == "xavier":
            for name, mod in model.named_modules():
                if isinstance(mod, torch.nn.Linear) and mod is not model.lm_head:
                    gain = 2**-0.5 if name.endswith(("q_proj", "k_proj", "v_proj")) else 1.0
                    torch.nn.init.xavier_uniform_(mod.weight, gain=gain)
                    if mod.bias is not None:
                        mod.bias.zero_()
        # Shared embeddings at std d^-1/2: scaled by sqrt(d) they enter at about unit size, and as
        # the tied output layer they give logits of about unit size.
        emb = model.get_input_embeddings().weight
        emb.normal_(0.0, args.d_model**-0.5)
        emb[pad].zero_()
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model: d_model {args.d_model}, {args.layers}+{args.layers} layers, {args.heads} heads, FFN {args.ffn}; {n_trainable} trainable parameters")

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "layer_norm" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
    )

    def dev_loss(pairs):
        if not pairs:
            return None
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for idx in batches(pairs, args.max_tokens, random.Random(0)):
                loss, k = loss_of(model, collate(pairs, idx, pad), 0.0)
                tot += float(loss)
                n += k
        model.train()
        return tot / n

    # The dev targets with other sentences' sources: how much the model uses its source.
    dev_other = [(dev[(i + 1) % len(dev)][0], dev[i][1]) for i in range(len(dev))]

    model.train()
    t_start = time.monotonic()
    step, epoch, done = 0, 0, False
    run_loss, run_tok, seen_tok = 0.0, 0, 0
    last_loss = float("nan")
    while not done:
        epoch += 1
        for idx in batches(train, args.max_tokens, rng):
            elapsed = time.monotonic() - T0
            if elapsed >= budget_s:
                done = True
                break
            frac = min(1.0, (time.monotonic() - t_start) / max(1.0, budget_s - (t_start - T0)))
            lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = collate(train, idx, pad)
            if args.dec_drop > 0:
                dec_in = batch[2]
                hit = (torch.rand(dec_in.shape) < args.dec_drop) & (dec_in != pad)
                batch = (batch[0], batch[1], dec_in.masked_fill(hit, unk), batch[3])
            loss, n = loss_of(model, batch, args.smoothing)
            opt.zero_grad(set_to_none=True)
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run_loss += float(loss.detach())
            run_tok += n
            seen_tok += n
            if step % args.log_every == 0:
                last_loss = run_loss / run_tok
                log(f"step {step} epoch {epoch} ({seen_tok / n_tgt:.2f} epochs) lr {lr:.2e} loss {last_loss:.3f}")
                run_loss, run_tok = 0.0, 0
        d = dev_loss(dev)
        if d is not None:
            log(f"end of pass {epoch}: dev loss {d:.3f} (no smoothing), ppl {math.exp(d):.1f}; with wrong sources {dev_loss(dev_other):.3f}")
    if run_tok:
        last_loss = run_loss / run_tok
    train_s = time.monotonic() - t_start
    log(f"training stopped at the budget: {step} steps, {seen_tok / n_tgt:.2f} epochs, {train_s:.0f} s; last logged loss {last_loss:.3f} (label-smoothed)")

    # Save as the hub lays out a Marian model.
    model.eval()
    eos = vocab["</s>"]
    gc = model.generation_config
    gc.num_beams = 4
    gc.max_length = 512
    gc.bad_words_ids = [[pad]]
    gc.forced_eos_token_id = eos
    gc.decoder_start_token_id = pad
    gc.pad_token_id = pad
    gc.eos_token_id = eos
    gc.bos_token_id = 0
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    for f in ("special_tokens_map.json",):
        if (out / f).exists():
            (out / f).unlink()

    # What a user of the directory gets.
    model = MarianMTModel.from_pretrained(out).eval()
    tok = MarianTokenizer.from_pretrained(out)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        stored = sum(f.get_tensor(k).numel() for k in f.keys())
    print(f"parameters: {n_trainable} trainable, {stored} values in model.safetensors")
    for name in FILES:
        print(f"  {name}: {(out / name).stat().st_size} bytes")
    print(f"  total: {sum((out / name).stat().st_size for name in FILES)} bytes")

    import sacrebleu

    if dev:
        hyp = translate(model, tok, [a for a, _ in dev_raw])
        for i in range(0, 3):
            print(f"  dev {i}: {dev_raw[i][0]}\n      => {hyp[i]}")
        print(f"newstest dev ({len(dev)} held-out pairs): chrF {sacrebleu.corpus_chrf(hyp, [[b for _, b in dev_raw]]).score:.2f} BLEU {sacrebleu.corpus_bleu(hyp, [[b for _, b in dev_raw]]).score:.2f}")

    if args.flores_lines <= 0:
        return
    src = read_lines("flores200-devtest.tr")[: args.flores_lines]
    ref = read_lines("flores200-devtest.en")[: args.flores_lines]
    t = time.monotonic()
    flores = encode(list(zip(src, ref)))
    right = dev_loss(flores)
    wrong = dev_loss([(flores[(i + 1) % len(flores)][0], flores[i][1]) for i in range(len(flores))])
    model.eval()
    print(f"FLORES-200 devtest tr->en, first {len(src)} lines: loss per target token {right:.3f} (ppl {math.exp(right):.1f}); with other lines' sources {wrong:.3f}")
    hyp = translate(model, tok, src)
    chrf = sacrebleu.corpus_chrf(hyp, [ref]).score
    bleu = sacrebleu.corpus_bleu(hyp, [ref]).score
    print(f"FLORES-200 devtest tr->en, first {len(src)} lines, greedy: chrF {chrf:.2f} BLEU {bleu:.2f} ({time.monotonic() - t:.0f} s)")
    for i in range(5):
        print(f"--- {i + 1}\n  src: {src[i]}\n  ref: {ref[i]}\n  out: {hyp[i]}")


if __name__ == "__main__":
    main()
