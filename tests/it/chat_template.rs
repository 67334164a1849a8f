//! The built-in chat templates (`prompts/chat/`) against the templates real files carry, and the
//! fallback to them for a GGUF that carries none.

use crate::common;

use tercuman::chat::prompt::{family_template, render_chat, template_source, Style};
use tercuman::hub::card;
use tercuman::model::gguf::{read_header, Meta};
use tercuman::model::load_gguf;

/// The tiny Qwen2 fixture carries the ChatML template of Qwen2-Instruct without the default
/// system prompt (`scripts/make_tiny_qwen2.py`). With a system message given, Qwen2.5's published
/// template must render exactly what it renders.
#[test]
fn the_built_in_qwen_template_renders_as_the_fixtures_chatml() {
    let (ct, _) = read_header(&common::fixture("tiny-qwen2/tiny-qwen2.gguf")).unwrap();
    let reference = Meta(&ct)
        .str("tokenizer.chat_template")
        .unwrap()
        .to_string();
    let built_in = template_source(family_template("qwen2"));
    assert_ne!(reference, built_in);
    let conversations: [&[(&str, &str)]; 3] = [
        &[("system", "Çevirmensin."), ("user", "Merhaba dünya.")],
        &[
            ("system", "Kısa yaz."),
            ("user", "Bir."),
            ("assistant", "One."),
            ("user", "İki <|im_end|> üç."),
        ],
        &[("system", ""), ("user", "  boşluklar  kalır \n")],
    ];
    for messages in conversations {
        assert_eq!(
            render_chat(built_in, messages, "").unwrap(),
            render_chat(&reference, messages, "").unwrap(),
            "{messages:?}"
        );
    }
}

/// The test model (Gemma 3 270M base) carries no chat template: run as an instruction-tuned
/// card's model it is prompted through Gemma 3's published template.
#[test]
fn a_gguf_without_a_chat_template_is_prompted_through_its_familys() {
    let model = load_gguf(&common::test_gguf()).unwrap();
    assert_eq!(model.info.architecture, "gemma3");
    assert!(
        model.info.chat_template.is_none(),
        "the test model gained a template"
    );
    let card = card::find("gemma-3-1b-it").unwrap();
    let style =
        Style::for_card(card.prompts.as_ref().unwrap(), Some(&model.info), "<bos>").unwrap();
    let template = style.chat.unwrap().template;
    assert_eq!(template, template_source("chat/gemma-3-it.jinja"));
    let rendered = render_chat(&template, &[("user", "Merhaba.")], "<bos>").unwrap();
    assert_eq!(
        rendered,
        "<bos><start_of_turn>user\nMerhaba.<end_of_turn>\n<start_of_turn>model\n"
    );
}
