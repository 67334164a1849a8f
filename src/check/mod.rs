//! Fidelity checks: does an English block say what its Turkish source says?
//!
//! Each check compares one source block with its translation and reports [`Finding`]s: a
//! number whose value changed or vanished, a name lost or invented, a block shorter or longer
//! than human translations ever are, Turkish left in the English, a loop, a quotation dropped.
//! The checks are text analysis only (no model), so they run on any translation: ours, a
//! person's, another engine's (`tercuman check`), and on every block `translate` produces.
//!
//! Submodules, one per kind of finding:
//! [`numbers`] (values in Turkish and English forms), [`names`] (proper names, exonyms),
//! [`length`] (omission / addition), [`untranslated`], [`repetition`], [`quote`].
//!
//! Within this module, other modules of the crate are reached only as `crate::text::chunk`.

mod finding;
pub mod length;
pub mod names;
pub mod numbers;
pub mod quote;
pub mod repetition;
mod serial;
pub mod untranslated;

pub use finding::{Finding, Kind, Lang, Span};

/// Every check on one block: `source` (Turkish) against `translation` (English). Findings come
/// ordered by kind, then by position.
pub fn check_block(source: &str, translation: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    numbers::check(source, translation, &mut out);
    names::check(source, translation, &mut out);
    length::check(source, translation, &mut out);
    untranslated::check(source, translation, &mut out);
    repetition::check(source, translation, &mut out);
    quote::check(source, translation, &mut out);
    out.sort_by_key(|f| {
        (
            f.kind,
            f.source.as_ref().map_or(usize::MAX, |s| s.start),
            f.translation.as_ref().map_or(usize::MAX, |s| s.start),
        )
    });
    out
}
