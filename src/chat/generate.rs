//! Generation: tokenizes a prompt, runs the model over it and samples the answer token by token
//! with candle's `LogitsProcessor`, stopping on the model's end-of-turn tokens, at a line end
//! when asked, at a token budget, or when the output starts repeating itself.

use super::prompt::Segment;
use crate::error::{Error, Result};
use crate::model::LoadedModel;
use crate::stats::Stats;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Params {
    /// Hard cap on generated tokens per call; each call may ask for fewer.
    pub max_new_tokens: usize,
    /// 0 means greedy (argmax), reproducible.
    pub temperature: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn.
    EndOfTurn,
    /// A line ended (few-shot answers and bullets are one line).
    LineEnd,
    /// The token budget ran out.
    Budget,
    /// The output began repeating itself and was cut.
    Repetition,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    /// The first token generated, if any.
    pub first_token: Option<u32>,
    pub tokens: usize,
    pub stop: StopReason,
}

/// A point in a sequence to come back to (see [`Engine::rewind`]).
#[derive(Clone)]
pub struct Mark {
    len: usize,
    next_logits: Option<candle_core::Tensor>,
    unfed: Option<u32>,
}

/// A model with its sampling state and the position of its KV cache.
pub struct Engine {
    pub model: LoadedModel,
    params: Params,
    sampler: LogitsProcessor,
    seed: u64,
    /// Tokens whose text holds a line break: a one-line answer may not start with one.
    line_break_tokens: Vec<u32>,
    /// Tokens in the KV cache, in order.
    history: Vec<u32>,
    /// Logits after the last fed token, waiting to be sampled.
    next_logits: Option<candle_core::Tensor>,
    /// The last sampled token that was not fed back (generation stopped on it).
    unfed: Option<u32>,
    pub stats: Stats,
}

impl Engine {
    pub fn new(model: LoadedModel, params: Params) -> Self {
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::All {
                temperature: params.temperature,
            }
        };
        let line_break_tokens = (0..model.tokenizer.vocab_size() as u32)
            .filter(|&id| {
                model.tokenizer.id_to_token(id).is_some_and(|t| {
                    // SentencePiece writes it as is or as a byte token; byte-level BPE as `Ċ`.
                    t.contains('\n') || t.contains('\u{10a}') || t == "<0x0A>"
                })
            })
            .collect();
        Engine {
            line_break_tokens,
            seed: params.seed,
            sampler: LogitsProcessor::from_sampling(params.seed, sampling),
            model,
            params,
            history: Vec::new(),
            next_logits: None,
            unfed: None,
            stats: Stats::default(),
        }
    }

    /// The context this run allows, in tokens.
    pub fn context_length(&self) -> usize {
        self.model.info.context_length
    }

    /// Number of tokens `text` takes as article text.
    pub fn count_tokens(&self, text: &str) -> usize {
        crate::model::gguf_tokenizer::count(&self.model.tokenizer, text)
    }

    fn encode_text(&mut self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        crate::model::gguf_tokenizer::encode(&mut self.model.tokenizer, text, parse_special)
    }

    /// Token ids of a prompt: BOS where the model wants one, template segments with special
    /// tokens parsed, article text with them left as text.
    pub fn encode(&mut self, segments: &[Segment]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for seg in segments {
            match seg {
                Segment::Template(t) => ids.extend(self.encode_text(t, true)?),
                Segment::Text(t) => ids.extend(self.encode_text(t, false)?),
            }
        }
        let info = &self.model.info;
        if let (true, Some(bos)) = (info.add_bos, info.bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Token ids of template text that continues the current sequence (no BOS).
    pub fn encode_continuation(&mut self, text: &str) -> Result<Vec<u32>> {
        self.encode_text(text, true)
    }

    /// Starts a new sequence and runs the prompt. The part it shares with what is already in
    /// the KV cache (the instructions and few-shot examples of the previous chunk) is reused,
    /// not recomputed.
    pub fn start(&mut self, prompt: &[u32]) -> Result<()> {
        self.unfed = None;
        self.next_logits = None;
        let shared = self
            .history
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            // The last prompt token always runs: its logits pick the first answer token.
            .min(prompt.len().saturating_sub(1));
        if shared > 0 {
            let kept = self.model.network.truncate_kv_cache(shared);
            self.history.truncate(kept);
        } else {
            self.model.network.clear_kv_cache();
            self.history.clear();
        }
        self.feed(&prompt[self.history.len()..])
    }

    /// Appends tokens to the current sequence (after the last generated token).
    pub fn feed(&mut self, ids: &[u32]) -> Result<()> {
        let mut all = Vec::with_capacity(ids.len() + 1);
        all.extend(self.unfed.take());
        all.extend_from_slice(ids);
        if all.is_empty() {
            return Ok(());
        }
        let pos = self.history.len();
        if pos + all.len() > self.context_length() {
            return Err(Error::ContextOverflow {
                needed: pos + all.len(),
                context: self.context_length(),
            });
        }
        let t = Instant::now();
        let logits = self.model.network.forward(&all, pos)?;
        self.stats.prefill_time += t.elapsed();
        self.stats.prompt_tokens += all.len();
        self.history.extend_from_slice(&all);
        self.next_logits = Some(logits);
        Ok(())
    }

    /// A sampler for retries: temperature sampling, seeded from the run's seed so that a run
    /// stays reproducible.
    pub fn retry_sampler(&self, attempt: u64) -> LogitsProcessor {
        LogitsProcessor::from_sampling(
            self.seed.wrapping_add(attempt),
            Sampling::TopP {
                p: 0.9,
                temperature: 0.8,
            },
        )
    }

    pub fn mark(&self) -> Mark {
        Mark {
            len: self.history.len(),
            next_logits: self.next_logits.clone(),
            unfed: self.unfed,
        }
    }

    /// Goes back to `cp`, to generate again from there. False when `cp` lies past the current
    /// sequence (a new prompt started since); the sequence then goes on from where it is.
    pub fn rewind(&mut self, cp: &Mark) -> Result<bool> {
        if cp.len > self.history.len() {
            return Ok(false);
        }
        let kept = self.model.network.truncate_kv_cache(cp.len);
        if kept < cp.len {
            // A sliding window dropped keys the mark needs: run the tokens up to it again
            // (their logits are the mark's, restored below).
            let t = Instant::now();
            self.model
                .network
                .forward(&self.history[kept..cp.len], kept)?;
            self.stats.prefill_time += t.elapsed();
            self.stats.prompt_tokens += cp.len - kept;
        }
        self.history.truncate(cp.len);
        self.next_logits = cp.next_logits.clone();
        self.unfed = cp.unfed;
        Ok(true)
    }

    /// Generates up to `max_new` tokens (capped by `--max-new-tokens`) from the current state.
    pub fn generate(&mut self, max_new: usize, stop_at_line_end: bool) -> Result<Generated> {
        self.generate_with(max_new, stop_at_line_end, None, &[])
    }

    /// [`Engine::generate`], sampling with `sampler` instead of the run's own, and never
    /// starting with a token of `ban_first`.
    pub fn generate_with(
        &mut self,
        max_new: usize,
        stop_at_line_end: bool,
        mut sampler: Option<&mut LogitsProcessor>,
        ban_first: &[u32],
    ) -> Result<Generated> {
        let max_new = max_new.min(self.params.max_new_tokens).max(1);
        let mut out: Vec<u32> = Vec::new();
        let mut stop = StopReason::Budget;
        let t = Instant::now();
        for step in 0..max_new {
            let logits = match self.next_logits.take() {
                Some(l) => l,
                None => break,
            };
            // A one-line answer (a bullet, a few-shot sentence) starts with text: its first
            // token is neither a line break nor the end of the turn.
            let logits = if step == 0 && (stop_at_line_end || !ban_first.is_empty()) {
                let mut l = logits.to_vec1::<f32>()?;
                let line = if stop_at_line_end {
                    self.line_break_tokens
                        .iter()
                        .chain(&self.model.info.stop_tokens)
                } else {
                    [].iter().chain(&[])
                };
                for &id in line.chain(ban_first) {
                    if let Some(v) = l.get_mut(id as usize) {
                        *v = f32::NEG_INFINITY;
                    }
                }
                candle_core::Tensor::from_vec(l, logits.shape(), logits.device())?
            } else {
                logits
            };
            let next = match sampler.as_deref_mut() {
                Some(s) => s.sample(&logits)?,
                None => self.sampler.sample(&logits)?,
            };
            if self.model.info.stop_tokens.contains(&next) {
                stop = StopReason::EndOfTurn;
                break;
            }
            out.push(next);
            // Only this token's text is looked at in the loop; the answer is decoded once.
            if stop_at_line_end && self.model.tokenizer.decode(&[next], false)?.contains('\n') {
                self.unfed = Some(next);
                stop = StopReason::LineEnd;
                break;
            }
            if let Some(keep) = repetition_cut(&out) {
                out.truncate(keep);
                self.unfed = Some(next);
                stop = StopReason::Repetition;
                break;
            }
            if step + 1 == max_new {
                self.unfed = Some(next);
                break;
            }
            let logits = self.model.network.forward(&[next], self.history.len())?;
            self.history.push(next);
            self.next_logits = Some(logits);
        }
        self.stats.decode_time += t.elapsed();
        self.stats.generated_tokens += out.len();
        let mut text = self.model.tokenizer.decode(&out, true)?;
        if stop == StopReason::LineEnd {
            if let Some(nl) = text.find('\n') {
                text.truncate(nl);
            }
        }
        Ok(Generated {
            text: text.trim().to_string(),
            first_token: out.first().copied(),
            tokens: out.len(),
            stop,
        })
    }
}

/// If `tokens` ends in a block of 1 to 32 tokens repeated back to back, covering at least 16
/// tokens and at least 3 times, returns how many tokens to keep: everything before the
/// repetition and one copy of the block.
pub fn repetition_cut(tokens: &[u32]) -> Option<usize> {
    let n = tokens.len();
    for period in 1..=32.min(n / 3) {
        let block = &tokens[n - period..];
        let mut start = n - period;
        while start >= period && &tokens[start - period..start] == block {
            start -= period;
        }
        let repeats = (n - start) / period;
        if repeats >= 3 && n - start >= 16 {
            return Some(start + period);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::repetition_cut;

    #[test]
    fn a_looping_tail_is_cut_to_one_copy() {
        let mut t = vec![1, 2, 3];
        for _ in 0..6 {
            t.extend([7, 8, 9]);
        }
        assert_eq!(repetition_cut(&t), Some(6));
    }

    #[test]
    fn a_single_token_loop_is_cut() {
        let mut t = vec![5, 6];
        t.extend(std::iter::repeat_n(4, 20));
        assert_eq!(repetition_cut(&t), Some(3));
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let t: Vec<u32> = (0..100).collect();
        assert_eq!(repetition_cut(&t), None);
        // A word said twice is not a loop.
        assert_eq!(repetition_cut(&[1, 2, 3, 1, 2, 3]), None);
    }
}
