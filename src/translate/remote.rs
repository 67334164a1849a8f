//! Translation through a remote engine ([`crate::remote`]): the article cut as for a local chat
//! model, the pieces of a window of blocks sent together (up to `--concurrency` in flight,
//! shared with every other article the run has going), each answer checked, and a failing one
//! asked once more, sampled and seeded, as a local chat model's is. Blocks come back in order.

use super::chat::{answer_budget, chunk_budget, clean, failure};
use super::{add_flag, join, Flag, Piece, TranslatedBlock};
use crate::chat::generate::{Generated, Params, StopReason};
use crate::chat::prompt::{self, Purpose, Style};
use crate::error::{Error, Result};
use crate::remote::{estimate_tokens as tokens, Answer, Api, Ask, Client};
use crate::stats::Stats;
use crate::text::chunk::{self, Unit};
use crate::text::Block;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The temperature of the one retry of a failing answer (a local chat model's too).
const RETRY_TEMPERATURE: f64 = 0.8;

/// A served model that translates.
#[derive(Clone)]
pub struct RemoteTranslator {
    pub client: Client,
    style: Style,
    concurrency: usize,
    context: usize,
    params: Params,
    pub stats: Stats,
}

/// A piece's answer, with the tokens its tries took.
struct Done {
    g: Generated,
    prompt_tokens: usize,
    completion_tokens: usize,
}

impl RemoteTranslator {
    pub fn new(client: Client, concurrency: usize, context: usize, params: Params) -> Self {
        let style = client.api().style();
        RemoteTranslator {
            client,
            style,
            concurrency: concurrency.max(1),
            context,
            params,
            stats: Stats::default(),
        }
    }

    /// Translates the blocks from `done` on, a window of them at a time: enough pieces for a
    /// few rounds of requests in flight.
    pub fn translate(&mut self, blocks: &[Block], done: usize) -> Result<Vec<TranslatedBlock>> {
        let unit = match self.client.api() {
            Api::Chat => Unit::Paragraph,
            Api::Completions => Unit::Sentence,
        };
        let budget = chunk_budget(self.context);
        let mut window: Vec<(usize, Vec<String>)> = Vec::new();
        let mut count = 0;
        for (index, block) in blocks.iter().enumerate().skip(done) {
            let pieces: Vec<String> = chunk::chunk(&block.text, unit, budget, &tokens)
                .into_iter()
                .map(|r| block.text[r].trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            count += pieces.len();
            window.push((index, pieces));
            if count >= 4 * self.concurrency {
                break;
            }
        }
        let jobs: Vec<(usize, &str)> = window
            .iter()
            .flat_map(|(index, pieces)| pieces.iter().map(|p| (*index, p.as_str())))
            .collect();
        let started = Instant::now();
        let (answers, error) = self.run(&jobs);
        self.stats.decode_time += started.elapsed();
        // The blocks whose every piece was answered, in order up to the first that was not:
        // kept even when a request failed for good (the next call meets the fault again, or
        // goes on if it passed), so that a server that dies leaves them for --resume.
        let mut answers = answers.into_iter();
        let mut finished = Vec::new();
        for (index, pieces) in window {
            let done: Vec<Done> = answers.by_ref().take(pieces.len()).collect();
            if done.len() < pieces.len() {
                break;
            }
            finished.push(self.assemble(&blocks[index], pieces, done));
        }
        match error {
            Some(e) if finished.is_empty() || matches!(e, Error::Stopped) => Err(e),
            _ => Ok(finished),
        }
    }

    /// The jobs' answers, in order, up to `concurrency` workers asking at once: all of them,
    /// or those before the first that failed, with its error.
    fn run(&self, jobs: &[(usize, &str)]) -> (Vec<Done>, Option<Error>) {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Done>>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        let workers = self.concurrency.min(jobs.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, piece)) = jobs.get(i) else {
                        break;
                    };
                    let result = self.translate_piece(index, piece);
                    let failed = result.is_err();
                    results.lock().expect("results lock")[i] = Some(result);
                    if failed {
                        // The others stop taking new pieces.
                        next.store(jobs.len(), Ordering::Relaxed);
                        break;
                    }
                });
            }
        });
        let mut done = Vec::with_capacity(jobs.len());
        let mut error = None;
        for result in results.into_inner().expect("results lock") {
            match (result, &error) {
                (Some(Ok(d)), None) => done.push(d),
                (Some(Err(e)), None) => error = Some(e),
                // A user's stop is said as such, whatever else failed.
                (Some(Err(e @ Error::Stopped)), Some(_)) => error = Some(e),
                (None, None) => {
                    unreachable!("jobs are taken in order: one before a failure is answered")
                }
                _ => {}
            }
        }
        (done, error)
    }

    /// One piece, with one retry when the answer loops, is still Turkish or fails the checks;
    /// the retry is kept when it is better.
    fn translate_piece(&self, index: usize, piece: &str) -> Result<Done> {
        let segments = prompt::build(&self.style, Purpose::Translate, piece, 0, "")?;
        let ask = Ask {
            prompt: prompt::to_string(&segments),
            max_tokens: answer_budget(tokens(piece)).min(self.params.max_new_tokens),
            temperature: self.params.temperature,
            seed: self.params.seed,
            one_line: self.client.api() == Api::Completions,
        };
        let first = self.client.complete(&ask)?;
        let cost = |a: &Answer| {
            let g = generated(a);
            (
                failure(&g, piece).is_some(),
                crate::check::check_block(piece, &clean(&g.text)).len(),
            )
        };
        let first_cost = cost(&first);
        let mut done = Done {
            g: generated(&first),
            prompt_tokens: first.prompt_tokens,
            completion_tokens: first.completion_tokens,
        };
        if first_cost == (false, 0) {
            return Ok(done);
        }
        let again = self.client.complete(&Ask {
            temperature: RETRY_TEMPERATURE,
            seed: self.params.seed.wrapping_add(index as u64 + 1),
            ..ask
        })?;
        done.prompt_tokens += again.prompt_tokens;
        done.completion_tokens += again.completion_tokens;
        if cost(&again) < first_cost {
            done.g = generated(&again);
        }
        Ok(done)
    }

    /// A block from its pieces' answers, checked as a whole.
    fn assemble(
        &mut self,
        block: &Block,
        sources: Vec<String>,
        done: Vec<Done>,
    ) -> TranslatedBlock {
        let mut flags = Vec::new();
        let mut pieces = Vec::with_capacity(sources.len());
        for (source, d) in sources.into_iter().zip(done) {
            self.stats.prompt_tokens += d.prompt_tokens;
            self.stats.generated_tokens += d.completion_tokens;
            if let Some(flag) = failure(&d.g, &source) {
                add_flag(&mut flags, flag);
            }
            if d.g.stop == StopReason::Budget {
                add_flag(&mut flags, Flag::BudgetExhausted);
            }
            let text = clean(&d.g.text);
            if text.is_empty() {
                add_flag(&mut flags, Flag::EmptyOutput);
            }
            pieces.push(Piece { source, text });
        }
        let text = join(&pieces);
        TranslatedBlock {
            kind: block.kind,
            findings: crate::check::check_block(&block.text, &text),
            source: block.text.clone(),
            text,
            pieces,
            flags,
        }
    }
}

/// An answer as a local model's generation, for the checks the two share.
fn generated(a: &Answer) -> Generated {
    Generated {
        text: a.text.clone(),
        first_token: None,
        tokens: a.completion_tokens,
        stop: match a.truncated {
            true => StopReason::Budget,
            false => StopReason::EndOfTurn,
        },
    }
}
