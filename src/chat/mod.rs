//! Chat (GGUF) models at work: the prompt for a task, built from the files under `prompts/` and
//! the model's own chat template ([`prompt`]), and the generation loop that feeds it and
//! samples the answer ([`generate`]).

pub mod generate;
pub mod prompt;

pub use generate::Engine;
