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
