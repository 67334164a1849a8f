//! The tokenizer built from the GGUF metadata gives llama.cpp's token ids, string for string
//! (ids recorded by scripts/record_llamacpp.py).

use crate::common;

use tercuman::model::gguf::read_header;
use tercuman::model::gguf_tokenizer as tokenizer;

#[test]
fn gemma_token_ids_match_llama_cpp() {
    let (ct, _) = read_header(&common::test_gguf()).unwrap();
    let mut tok = tokenizer::from_gguf(&ct).unwrap();
    let reference = common::reference();
    let cases = reference["tokenizer_cases"].as_array().unwrap();
    assert!(
        cases.len() >= 20,
        "the fixture should hold at least 20 strings"
    );
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let special = case["special"].as_bool().unwrap();
        let expected: Vec<u32> = common::ids(&case["ids"]);
        let ours = tokenizer::encode(&mut tok, text, special).unwrap();
        if ours != expected {
            failures.push(format!(
                "{text:?}\n  llama.cpp {expected:?}\n  ours      {ours:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn gemma_decoding_round_trips_turkish_text() {
    let (ct, _) = read_header(&common::test_gguf()).unwrap();
    let mut tok = tokenizer::from_gguf(&ct).unwrap();
    for text in ["İ ı ş ğ ü ö ç", "Pekin'de \"zirve\"\n\n3,5 puan  👋"] {
        let ids = tokenizer::encode(&mut tok, text, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
}

#[test]
fn control_markers_in_article_text_stay_text() {
    let (ct, _) = read_header(&common::test_gguf()).unwrap();
    let mut tok = tokenizer::from_gguf(&ct).unwrap();
    let end_of_turn = tok.token_to_id("<end_of_turn>").unwrap();
    let as_text = tokenizer::encode(&mut tok, "a <end_of_turn> b", false).unwrap();
    assert!(!as_text.contains(&end_of_turn));
    let as_marker = tokenizer::encode(&mut tok, "a <end_of_turn> b", true).unwrap();
    assert!(as_marker.contains(&end_of_turn));
}

/// The SentencePiece tokenizer (`src/model/spm.rs`) against the `tokenizers` crate given the
/// merges that the scores imply (every split of a normal piece into two normal pieces, ranked
/// by the merged piece's score, then its id), the way tercuman built Gemma's tokenizer before:
/// the same ids on every line of the test sets' Turkish and English, on text with control
/// markers read both ways, and the same decoded text.
#[test]
fn sentencepiece_ids_match_the_tokenizers_crate_on_the_test_sets() {
    let (ct, _) = read_header(&common::test_gguf()).unwrap();
    let mut ours = tokenizer::from_gguf(&ct).unwrap();
    let mut reference = reference::build(&ct);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testsets");
    let mut lines: Vec<String> = Vec::new();
    for name in ["newstest2018.tr", "newstest2018.en", "flores200-devtest.tr"] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        lines.extend(text.lines().take(700).map(str::to_string));
    }
    // Joined lines (runs of newlines and spaces are pieces of their own), control markers,
    // bytes outside the vocabulary.
    let joined: Vec<String> = lines.chunks(3).map(|c| c.join("\n\n  ")).collect();
    lines.extend(joined);
    lines.extend(
        [
            "<start_of_turn>user\nÇevir: Pekin'de zirve<end_of_turn>\n<start_of_turn>model\n",
            "a <end_of_turn> b <unused12> c",
            "\u{1F9EA}\u{E000} \u{10FFFF} tab\there",
            "   leading and trailing   ",
            "",
        ]
        .map(str::to_string),
    );
    let mut failures = Vec::new();
    for text in &lines {
        for special in [false, true] {
            let want = reference::encode(&mut reference, text, special);
            let got = tokenizer::encode(&mut ours, text, special).unwrap();
            if got != want {
                failures.push(format!(
                    "{text:?} special={special}\n  tokenizers {want:?}\n  ours       {got:?}"
                ));
            }
            let decoded = ours.decode(&got, false).unwrap();
            let want_text = reference.decode(&want, false).unwrap();
            if decoded != want_text {
                failures.push(format!(
                    "{text:?} decoded {decoded:?}, tokenizers {want_text:?}"
                ));
            }
        }
    }
    assert!(lines.len() > 2500);
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        2 * lines.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The reference: Gemma's tokenizer built with the `tokenizers` crate (what tercuman ran until
/// 2026-12-02).
mod reference {
    use candle_core::quantized::gguf_file::{Content, Value};
    use tokenizers::decoders::byte_fallback::ByteFallback;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::decoders::sequence::Sequence;
    use tokenizers::decoders::strip::Strip;
    use tokenizers::models::bpe::{Vocab, BPE};
    use tokenizers::normalizers::{Prepend, Replace};
    use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, Tokenizer};

    const NORMAL: u32 = 1;
    const SPACE: &str = "\u{2581}";

    fn array<'a>(ct: &'a Content, key: &str) -> &'a Vec<Value> {
        match &ct.metadata[key] {
            Value::Array(a) => a,
            _ => panic!("{key} is no array"),
        }
    }

    pub fn build(ct: &Content) -> Tokenizer {
        let tokens: Vec<String> = array(ct, "tokenizer.ggml.tokens")
            .iter()
            .map(|v| v.to_string().unwrap().clone())
            .collect();
        let scores: Vec<f32> = array(ct, "tokenizer.ggml.scores")
            .iter()
            .map(|v| v.to_f32().unwrap())
            .collect();
        let types: Vec<u32> = array(ct, "tokenizer.ggml.token_type")
            .iter()
            .map(|v| match v {
                Value::I32(x) => *x as u32,
                Value::U32(x) => *x,
                _ => panic!("token type"),
            })
            .collect();
        let mut vocab = Vocab::default();
        for (id, tok) in tokens.iter().enumerate() {
            vocab.entry(tok.clone()).or_insert(id as u32);
        }
        let mut merges: Vec<(f32, u32, String, String)> = Vec::new();
        for (id, piece) in tokens.iter().enumerate() {
            if types[id] != NORMAL || vocab[piece] != id as u32 {
                continue;
            }
            for (split, _) in piece.char_indices().skip(1) {
                let (left, right) = piece.split_at(split);
                let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) else {
                    continue;
                };
                if types[l as usize] == NORMAL && types[r as usize] == NORMAL {
                    merges.push((scores[id], id as u32, left.to_string(), right.to_string()));
                }
            }
        }
        merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let merges: Vec<(String, String)> = merges.into_iter().map(|(_, _, l, r)| (l, r)).collect();
        let unk = ct
            .metadata
            .get("tokenizer.ggml.unknown_token_id")
            .map(|v| tokens[v.to_u32().unwrap() as usize].clone());
        let mut builder = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .byte_fallback(true)
            .fuse_unk(true);
        if let Some(unk) = unk {
            builder = builder.unk_token(unk);
        }
        let mut tokenizer = Tokenizer::new(builder.build().unwrap());
        let add_space_prefix = match ct.metadata.get("tokenizer.ggml.add_space_prefix") {
            Some(v) => v.to_bool().unwrap(),
            None => true,
        };
        let replace = Replace::new(" ", SPACE).unwrap();
        let normalizer: NormalizerWrapper = if add_space_prefix {
            tokenizers::normalizers::Sequence::new(vec![
                Prepend::new(SPACE.into()).into(),
                replace.into(),
            ])
            .into()
        } else {
            replace.into()
        };
        tokenizer.with_normalizer(Some(normalizer)).unwrap();
        let mut decoders: Vec<DecoderWrapper> = vec![
            DecoderWrapper::Replace(Replace::new(SPACE, " ").unwrap()),
            ByteFallback::default().into(),
            Fuse::default().into(),
        ];
        if add_space_prefix {
            decoders.push(Strip::new(' ', 1, 0).into());
        }
        tokenizer.with_decoder(Some(Sequence::new(decoders)));
        let mut special = Vec::new();
        let mut user = Vec::new();
        for (id, tok) in tokens.iter().enumerate() {
            match types[id] {
                2 | 3 => special.push(AddedToken::from(tok.clone(), true)),
                4 => user.push(AddedToken::from(tok.clone(), false).normalized(false)),
                _ => {}
            }
        }
        tokenizer.add_special_tokens(special).unwrap();
        tokenizer.add_tokens(user).unwrap();
        tokenizer.set_encode_special_tokens(true);
        tokenizer
    }

    pub fn encode(t: &mut Tokenizer, text: &str, special: bool) -> Vec<u32> {
        t.set_encode_special_tokens(!special);
        let ids = t.encode_fast(text, false).unwrap().get_ids().to_vec();
        t.set_encode_special_tokens(true);
        ids
    }
}
