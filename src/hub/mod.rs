//! Getting model files onto the machine: the model cards built into the binary ([`card`]),
//! what `--model` names and where its files are ([`spec`]), and the Hugging Face hub client
//! that finds them in the standard cache or downloads them, verified ([`client`]). Nothing here
//! runs a model.

pub mod card;
pub mod client;
pub mod spec;

pub use client::{Hub, HubError, HubFile};
