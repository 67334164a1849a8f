//! Sentence-level translation with a Marian model: the blocks of the article are cut into
//! whole sentences (OPUS-MT models are trained on sentences), the sentences of several blocks
//! are translated together in length-sorted batches, and each block is put back together in
//! order.

use super::{add_flag, join, Flag, Piece, TranslatedBlock};
use crate::error::{Error, Result};
use crate::model::marian::tokenizer::MarianTokenizer;
use crate::model::marian::{Marian, Quantize};
use crate::stats::Stats;
use crate::text::chunk::{self, Unit};
use crate::text::BlockKind;
use std::path::Path;
use std::time::Instant;

/// Most source tokens in one batch, counted as its longest sentence times its sentences: an
/// upper bound on its encoder states and on its decoder caches (which grow with the output,
/// about as long as the source, times the rows), so that a batch of long sentences stays
/// within a modest amount of memory.
const BATCH_TOKENS: usize = 4096;

/// A Marian model with its tokenizer and decoding settings.
pub struct MarianEngine {
    pub model: Marian,
    pub tokenizer: MarianTokenizer,
    /// Beam width; 1 is greedy.
    pub beams: usize,
    /// Most sentences decoded together.
    pub batch_size: usize,
    pub stats: Stats,
}

/// A block to translate: its index in the article, kind and text.
pub struct Block<'a> {
    pub index: usize,
    pub kind: BlockKind,
    pub text: &'a str,
}

impl MarianEngine {
    /// Loads the model directory; `beams` overrides the model's own beam width.
    pub fn load(
        dir: &Path,
        beams: Option<usize>,
        batch_size: usize,
        quantize: Quantize,
    ) -> Result<MarianEngine> {
        let model = Marian::load_with(dir, quantize)?;
        let tokenizer = MarianTokenizer::load(dir)?;
        if tokenizer.vocab_size() != model.config.vocab_size {
            return Err(Error::InvalidModel {
                path: dir.join("vocab.json"),
                message: format!(
                    "has {} entries but the model's embedding table has {} rows; the files are from different models",
                    tokenizer.vocab_size(),
                    model.config.vocab_size
                ),
            });
        }
        Ok(MarianEngine {
            beams: beams.unwrap_or(model.generation.num_beams).max(1),
            batch_size: batch_size.max(1),
            model,
            tokenizer,
            stats: Stats::default(),
        })
    }

    /// The source tokens of `text` (its pieces and `</s>`).
    fn cost(&self, text: &str) -> usize {
        self.tokenizer
            .pieces(text)
            .map_or(usize::MAX, |p| p.len() + 1)
    }

    /// The sentences `text` is translated in, as byte ranges that tile it.
    pub fn sentences(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let budget = self.model.max_source_tokens();
        chunk::chunk(text, Unit::WholeSentence, budget, &|s| self.cost(s))
    }

    /// How many of the blocks `texts` to translate together: blocks are taken until they hold
    /// a batch of sentences (at least one block), so that short blocks share a batch while
    /// each block still reaches the output soon.
    pub fn window_len<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> usize {
        let mut taken = 0;
        let mut sentences = 0;
        for text in texts {
            if taken > 0 && sentences >= self.batch_size {
                break;
            }
            sentences += self.sentences(text).len();
            taken += 1;
        }
        taken
    }

    /// Translates `blocks`, their sentences batched together; the result is in their order.
    pub fn translate(&mut self, blocks: &[Block]) -> Result<Vec<TranslatedBlock>> {
        // Every non-empty sentence of every block, with where it goes.
        let mut sources: Vec<(usize, String)> = Vec::new();
        for (b, block) in blocks.iter().enumerate() {
            for r in self.sentences(block.text) {
                let s = block.text[r].trim();
                if !s.is_empty() {
                    sources.push((b, s.to_string()));
                }
            }
        }
        let ids: Vec<Vec<u32>> = sources
            .iter()
            .map(|(_, s)| self.tokenizer.encode(s))
            .collect::<Result<_>>()?;
        let outputs = self.run_batches(&ids).map_err(|e| match blocks.first() {
            Some(first) if blocks.len() == 1 => Error::Paragraph {
                paragraph: first.index + 1,
                message: format!("{e:#}"),
            },
            _ => e,
        })?;
        let mut out: Vec<TranslatedBlock> = blocks
            .iter()
            .map(|b| TranslatedBlock {
                kind: b.kind,
                source: b.text.to_string(),
                text: String::new(),
                pieces: Vec::new(),
                flags: Vec::new(),
                findings: Vec::new(),
            })
            .collect();
        for (((b, source), src), nbest) in sources.into_iter().zip(&ids).zip(outputs) {
            let (ids, text) = self.first_faithful(&source, nbest);
            let block = &mut out[b];
            let mut flag = |f| add_flag(&mut block.flags, f);
            if text.is_empty() {
                flag(Flag::EmptyOutput);
            } else if super::chat::untranslated(&source, &text) {
                flag(Flag::Untranslated);
            }
            // Stopped by the length limit (</s> forced there), not ended by the model.
            if self.model.generation.forced_length.is_none()
                && ids.len() >= self.model.max_length_for(src.len())
            {
                flag(Flag::BudgetExhausted);
            }
            block.pieces.push(Piece { source, text });
        }
        for block in &mut out {
            block.text = join(&block.pieces);
            block.findings = crate::check::check_block(&block.source, &block.text);
        }
        Ok(out)
    }

    /// The first of a sentence's candidate translations (best first) that the fidelity checks
    /// pass, else the best: a beam's runner-up often keeps the number or name that the best
    /// dropped. Returns its ids and text.
    fn first_faithful(&self, source: &str, nbest: Vec<Vec<u32>>) -> (Vec<u32>, String) {
        let mut best = None;
        for ids in nbest {
            let text = self.tokenizer.decode(&ids);
            if !text.is_empty() && crate::check::check_block(source, &text).is_empty() {
                return (ids, text);
            }
            best.get_or_insert((ids, text));
        }
        best.unwrap_or_default()
    }

    /// Decodes `sources` in batches of similar length (longest first), and returns each
    /// one's candidate outputs (best first), in the order of `sources`.
    fn run_batches(&mut self, sources: &[Vec<u32>]) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut order: Vec<usize> = (0..sources.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sources[i].len()));
        let mut outputs: Vec<Vec<Vec<u32>>> = vec![Vec::new(); sources.len()];
        let mut start = 0;
        while start < order.len() {
            // A stop asked by the user is heard between batches.
            crate::cancel::check()?;
            // Sorted longest first, so the first sentence of a batch bounds its length.
            let longest = sources[order[start]].len().max(1);
            let fit = (BATCH_TOKENS / longest).clamp(1, self.batch_size);
            let group = &order[start..(start + fit).min(order.len())];
            let batch: Vec<Vec<u32>> = group.iter().map(|&i| sources[i].clone()).collect();
            let t = Instant::now();
            let enc = self.model.encode(&batch)?;
            self.stats.prefill_time += t.elapsed();
            self.stats.prompt_tokens += batch.iter().map(Vec::len).sum::<usize>();
            let t = Instant::now();
            let out = self.model.decode_nbest(&enc, &batch, self.beams)?;
            self.stats.decode_time += t.elapsed();
            for (&i, o) in group.iter().zip(out) {
                self.stats.generated_tokens += o[0].len().saturating_sub(1);
                outputs[i] = o;
            }
            start += group.len();
        }
        Ok(outputs)
    }
}
