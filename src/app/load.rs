//! Loading the models a command names, ready to work: a translator (Marian or a chat model)
//! and chat models for summaries. Shared by `run` and `eval`.

use crate::chat::generate::{Engine, Params};
use crate::chat::prompt::Style;
use crate::error::{Error, Result};
use crate::hub::spec::{ModelFiles, Resolved};
use crate::model::marian::Quantize;
use crate::output::ModelReport;
use crate::remote::{Client, Endpoint};
use crate::stats::Stats;
use crate::summarize::remote::RemoteSummarizer;
use crate::text::Block;
use crate::translate::marian::{self as mt, MarianEngine};
use crate::translate::remote::RemoteTranslator;
use crate::translate::{self, TranslatedBlock};
use std::path::Path;

/// What loading a model takes from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--beams` (Marian; `None`: the model's own).
    pub beams: Option<usize>,
    /// Sentences a Marian model decodes at once.
    pub batch_size: usize,
    /// How a Marian model holds its weights.
    pub quantize: Quantize,
    /// Largest prompt context (bounded by the model's own).
    pub context: usize,
    pub params: Params,
    /// Requests in flight to a remote engine.
    pub concurrency: usize,
}

/// A loaded chat model with its prompts.
pub struct ChatModel {
    pub engine: Engine,
    pub style: Style,
    pub context: usize,
    pub report: ModelReport,
}

/// The model that translates.
pub enum Translator {
    Marian(Box<MarianEngine>),
    Chat(Box<ChatModel>),
    Remote(Box<RemoteTranslator>),
}

impl Translator {
    /// Translates the next blocks of `blocks` from `done` on: a Marian model a few at a time
    /// (about one batch of sentences), a chat model one.
    pub fn translate_next(
        &mut self,
        blocks: &[Block],
        done: usize,
    ) -> Result<Vec<TranslatedBlock>> {
        match self {
            Translator::Marian(mt) => {
                let rest = &blocks[done..];
                let n = mt.window_len(rest.iter().map(|b| b.text.as_str()));
                let window: Vec<mt::Block> = rest[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, block)| mt::Block {
                        index: done + i,
                        kind: block.kind,
                        text: &block.text,
                    })
                    .collect();
                mt.translate(&window)
            }
            Translator::Remote(remote) => remote.translate(blocks, done),
            Translator::Chat(chat) => {
                let block = &blocks[done];
                Ok(vec![translate::chat::translate_block(
                    &mut chat.engine,
                    &chat.style,
                    done,
                    block.kind,
                    &block.text,
                    chat.context,
                )?])
            }
        }
    }

    /// Token and time figures so far.
    pub fn stats(&self) -> &Stats {
        match self {
            Translator::Marian(m) => &m.stats,
            Translator::Chat(c) => &c.engine.stats,
            Translator::Remote(r) => &r.stats,
        }
    }
}

/// Loads the translator `resolved` names, with its report.
pub fn translator(resolved: &Resolved, settings: &Settings) -> Result<(Translator, ModelReport)> {
    if settings.quantize != Quantize::None && !matches!(resolved.files, ModelFiles::Marian(_)) {
        return Err(Error::QuantizeNotMarian {
            model: resolved.label.clone(),
        });
    }
    Ok(match &resolved.files {
        ModelFiles::Marian(dir) => {
            let engine =
                MarianEngine::load(dir, settings.beams, settings.batch_size, settings.quantize)?;
            (
                Translator::Marian(Box::new(engine)),
                marian_report(resolved, dir, settings.quantize),
            )
        }
        ModelFiles::Remote(endpoint) => {
            let client = Client::connect(endpoint, settings.concurrency)?;
            let report = remote_report(&client, endpoint);
            let remote = RemoteTranslator::new(
                client,
                settings.concurrency,
                settings.context,
                settings.params.clone(),
            );
            (Translator::Remote(Box::new(remote)), report)
        }
        ModelFiles::Gguf(_) => {
            let chat = chat(resolved, settings)?;
            let report = chat.report.clone();
            (Translator::Chat(Box::new(chat)), report)
        }
    })
}

/// How a served model is named in reports.
pub fn remote_report(client: &Client, endpoint: &Endpoint) -> ModelReport {
    ModelReport {
        source: client.label(),
        name: client.model.clone(),
        architecture: "remote (OpenAI API)".into(),
        path: endpoint.base.clone(),
    }
}

/// A served model that summarizes.
pub fn remote_summarizer(client: Client, settings: &Settings) -> RemoteSummarizer {
    let p = &settings.params;
    RemoteSummarizer::new(client, settings.context, p.temperature, p.seed)
}

/// Loads a GGUF chat model with its prompt style.
pub fn chat(resolved: &Resolved, settings: &Settings) -> Result<ChatModel> {
    let path = chat_weights(resolved)?;
    let model = crate::model::load_gguf(path)?;
    if let Some(card) = &resolved.card {
        if card.architecture.as_deref() != Some(model.info.architecture.as_str()) {
            return Err(Error::InvalidModel {
                path: path.to_path_buf(),
                message: format!(
                    "is a {} model, but the card {} says {}; the card is out of date: report it, or pass the file with --model PATH",
                    model.info.architecture,
                    card.name,
                    card.architecture.as_deref().unwrap_or("nothing")
                ),
            });
        }
    }
    let bos_token = model
        .info
        .bos
        .and_then(|id| model.tokenizer.id_to_token(id))
        .unwrap_or_default();
    let style = match resolved.card.as_ref().and_then(|c| c.prompts.as_ref()) {
        Some(prompts) => Style::for_card(prompts, Some(&model.info), &bos_token)?,
        None => Style::for_model(&model.info, &bos_token),
    };
    let report = ModelReport {
        source: resolved.label.clone(),
        name: model.info.name.clone(),
        architecture: model.info.architecture.clone(),
        path: path.display().to_string(),
    };
    Ok(ChatModel {
        context: settings.context.min(model.info.context_length),
        engine: Engine::new(model, settings.params.clone()),
        style,
        report,
    })
}

/// How a Marian model is named in reports.
fn marian_report(resolved: &Resolved, dir: &Path, quantize: Quantize) -> ModelReport {
    ModelReport {
        source: resolved.label.clone(),
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        architecture: match quantize {
            Quantize::None => "marian".into(),
            Quantize::Int8 => "marian (int8 weights)".into(),
        },
        path: dir.display().to_string(),
    }
}

/// The GGUF file of a model that is to summarize; a translation model cannot.
pub fn chat_weights(resolved: &Resolved) -> Result<&Path> {
    match &resolved.files {
        ModelFiles::Gguf(path) => Ok(path),
        ModelFiles::Remote(_) => Err(Error::Remote {
            url: resolved.label.clone(),
            message: "serves the model: there is no weights file to load".into(),
        }),
        other => Err(Error::InvalidModel {
            path: other.path().to_path_buf(),
            message: format!(
                "`{}` is a translation model; the summary needs a chat model (GGUF): pass one with --summary-model, or leave it out for the default",
                resolved.label
            ),
        }),
    }
}
