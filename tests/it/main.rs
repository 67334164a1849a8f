//! Every integration test, in one binary (one link instead of eight): the real executable
//! driven end to end (`cli`, `hub`), and the numerics against reference implementations
//! (`gemma3_parity`, `qwen2_parity`, `marian_parity`, `tokenizer_parity`), the Marian file
//! formats and generation configs the hub ships (`marian_files`), plus properties of
//! the text stages (`properties`).

mod batch;
mod chat_template;
mod check;
mod cli;
mod common;
mod eval;
mod gemma3_parity;
mod hub;
mod marian_files;
mod marian_parity;
mod properties;
mod qwen2_parity;
mod real_models;
mod remote;
mod split_gguf;
mod tokenizer_parity;
