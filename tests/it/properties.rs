//! Property tests of the reader and chunker: no panic on any input, and the chunks of a
//! paragraph always rejoin to exactly the paragraph.

use proptest::prelude::*;
use tercuman::text::chunk::{chunk, sentences, Unit};

fn turkish_text() -> impl Strategy<Value = String> {
    // Letters, Turkish letters, digits, sentence and quote punctuation, spaces of all kinds.
    proptest::collection::vec(
        prop_oneof![
            8 => "[a-zA-ZçğıöşüÇĞİÖŞÜ]{1,9}",
            2 => Just(" ".to_string()),
            1 => "[.!?…,;:]",
            1 => "[\"“”«»'’()]",
            1 => "[0-9]{1,4}",
            1 => Just("Dr.".to_string()),
            1 => Just("T.C.".to_string()),
            1 => "[\u{a0}\t\u{200b}]",
        ],
        0..120,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn chunks_rejoin_to_the_paragraph(text in turkish_text(), budget in 1usize..80, unit in 0usize..3) {
        let unit = [Unit::Paragraph, Unit::Sentence, Unit::WholeSentence][unit];
        let cost = |s: &str| s.chars().count();
        let ranges = chunk(&text, unit, budget, &cost);
        let rejoined: String = ranges.iter().map(|r| &text[r.clone()]).collect();
        prop_assert_eq!(&rejoined, &text);
        for r in &ranges {
            let piece = &text[r.clone()];
            prop_assert!(!piece.is_empty() || text.is_empty());
            prop_assert!(cost(piece) <= budget || piece.chars().count() == 1,
                "chunk {:?} over budget {}", piece, budget);
        }
    }

    #[test]
    fn sentences_tile_any_string(text in any::<String>()) {
        for weak in [false, true] {
            let rejoined: String = sentences(&text, weak).iter().map(|r| &text[r.clone()]).collect();
            prop_assert_eq!(&rejoined, &text);
        }
    }

    #[test]
    fn reader_never_panics_and_keeps_every_word(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(text) = tercuman::text::input::decode(&bytes, "fuzz") {
            let article = tercuman::text::input::parse(&text);
            let words_in: Vec<&str> = text.split_whitespace().collect();
            let joined: Vec<String> = article.blocks.iter().map(|b| b.text.clone()).collect();
            let joined = joined.join(" ");
            let words_out: Vec<&str> = joined.split_whitespace().collect();
            prop_assert_eq!(words_in, words_out);
        }
    }
}

#[test]
fn sample_article_has_23_pieces_in_9_blocks() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pekin-zirvesi.tr.txt"
    ))
    .unwrap();
    let article = tercuman::text::input::parse(&text);
    assert_eq!(article.blocks.len(), 9);
    let n: usize = article
        .blocks
        .iter()
        .map(|b| sentences(&b.text, true).len())
        .sum();
    // 22 sentences, and the closing dateline `- PEKİN` that ends the last paragraph's line.
    assert_eq!(n, 23);
}

/// Tens of megabytes, and one paragraph of 60 000 characters with no sentence punctuation at
/// all: the reader keeps every block, and the chunker cuts the long one (down to words, as a
/// last resort) into pieces that rejoin exactly, without a panic.
#[test]
fn a_huge_article_and_an_unpunctuated_paragraph_are_read_and_cut_whole() {
    let sentence =
        "Belediye ekipleri sabahtan beri Ankara'nın ana caddelerinde karla mücadele ediyor. ";
    let paragraph = sentence.repeat(40);
    let endless = "kar yağışı sürüyor ve yollar kapanıyor ".repeat(1500);
    let mut text = String::from("Başlık\n\n");
    for i in 0..6000 {
        text.push_str(if i == 3000 { &endless } else { &paragraph });
        text.push_str("\n\n");
    }
    assert!(text.len() > 20_000_000, "{}", text.len());
    let decoded = tercuman::text::input::decode(text.as_bytes(), "huge").unwrap();
    let article = tercuman::text::input::parse(&decoded);
    assert_eq!(article.blocks.len(), 6001);
    let cost = |s: &str| s.len() / 4 + 1;
    for (i, block) in article
        .blocks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 500 == 1 || *i == 3001)
    {
        let ranges = chunk(&block.text, Unit::Paragraph, 384, &cost);
        let rejoined: String = ranges.iter().map(|r| &block.text[r.clone()]).collect();
        assert_eq!(rejoined, block.text, "block {i}");
        assert!(
            ranges.iter().all(|r| cost(&block.text[r.clone()]) <= 384),
            "block {i}"
        );
        if i == 3001 {
            assert!(ranges.len() > 30, "{}", ranges.len());
        }
    }
}
