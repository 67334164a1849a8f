//! tercuman: Turkish news articles into English, on the user's own machine.
//!
//! The pipeline, one module per stage, in the order the data flows:
//!
//! ```text
//! text (read, cut) → translate (Marian | chat model) → check → summarize → output
//!                       │                      │
//!                     model (networks, tokenizers) ← hub (cards, download)
//! ```
//!
//! - [`text`]: the article file into blocks ([`text::input`]), blocks into sentences and
//!   pieces ([`text::chunk`]).
//! - [`translate`]: each block through a Marian model ([`translate::marian`]) or a chat model
//!   ([`translate::chat`], on [`chat`]'s prompts and generation loop).
//! - [`check`]: does the English say what the Turkish says (numbers, names, omissions,
//!   untranslated text, loops, quotations).
//! - [`summarize`]: bullet points from a chat model.
//! - [`output`]: text, Markdown or JSON, written atomically; the resume checkpoint.
//! - [`model`]: the networks (Gemma 3, Qwen2, Marian) and their tokenizers; the SIMD kernels
//!   they use are in the `tercuman-kernels` crate.
//! - [`hub`]: model cards, `--model` resolution, the Hugging Face hub client.
//! - [`app`]: the subcommands, built from the above; [`cli`] the command line as typed.
//! - [`cancel`] (the Ctrl-C flag), [`stats`] (run figures), [`error`], [`sys`] (the only
//!   `unsafe` of this crate: two libc calls).

#![deny(unsafe_code)]

pub mod app;
pub mod cancel;
pub mod chat;
pub mod check;
pub mod cli;
pub mod error;
pub mod eval;
pub mod hub;
pub mod model;
pub mod output;
pub mod remote;
pub mod stats;
pub mod summarize;
#[allow(unsafe_code)]
pub mod sys;
pub mod text;
pub mod translate;
