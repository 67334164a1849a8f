//! Decoding a batch of encoded sentences: greedy, or the beam search as transformers runs it
//! (top-2k candidates over all beams, length-normalised finished hypotheses, its early-stop
//! rule), so that the output ids match the reference exactly.

use super::{Encoded, Marian};
use crate::error::Result;

impl Marian {
    pub(super) fn greedy(&self, enc: &Encoded, batch: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        let g = &self.generation;
        let limits: Vec<usize> = batch.iter().map(|s| self.max_length_for(s.len())).collect();
        let mut outs: Vec<Vec<u32>> = vec![vec![g.decoder_start]; batch.len()];
        let mut active: Vec<usize> = (0..batch.len()).collect();
        let rows: Vec<u32> = (0..batch.len() as u32).collect();
        let mut state = self.start(enc, &rows)?;
        while !active.is_empty() {
            let tokens: Vec<u32> = active.iter().map(|&i| *outs[i].last().unwrap()).collect();
            let mut logits = self.step_logits(&mut state, &tokens)?;
            let mut keep = Vec::with_capacity(active.len());
            let mut still = Vec::with_capacity(active.len());
            let vocab = self.config.vocab_size;
            for ((row, &i), s) in active
                .iter()
                .enumerate()
                .zip(logits.chunks_exact_mut(vocab))
            {
                let cur_len = outs[i].len();
                self.scores(s, cur_len, limits[i], false);
                let next = argmax(s);
                outs[i].push(next);
                if next != g.eos && outs[i].len() < limits[i] {
                    keep.push(row as u32);
                    still.push(i);
                }
            }
            if still.len() < active.len() && !still.is_empty() {
                state.select(&keep)?;
            }
            active = still;
        }
        Ok(outs)
    }

    /// Every sentence's finished hypotheses, best first (at most `beams`; the first is what
    /// transformers' `generate` returns).
    pub(super) fn beam_search(
        &self,
        enc: &Encoded,
        batch: &[Vec<u32>],
        beams: usize,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        let g = &self.generation;
        let mut searches: Vec<BeamSearch> = batch
            .iter()
            .map(|s| {
                BeamSearch::new(
                    g.decoder_start,
                    beams,
                    self.max_length_for(s.len()),
                    g.length_penalty,
                )
            })
            .collect();
        // Every beam of a sentence starts the same, so the first step runs one row each.
        let rows: Vec<u32> = (0..batch.len() as u32).collect();
        let mut state = self.start(enc, &rows)?;
        let mut active: Vec<usize> = (0..batch.len()).collect();
        // The sentence each row of the state decodes.
        let mut row_sentence: Vec<usize> = active.clone();
        while !active.is_empty() {
            let tokens: Vec<u32> = active
                .iter()
                .flat_map(|&i| {
                    searches[i]
                        .running
                        .iter()
                        .map(|h| *h.tokens.last().unwrap())
                })
                .collect();
            let mut logits = self.step_logits(&mut state, &tokens)?;
            // Each row's log-probabilities, rows in parallel (57000 exponentials a row on
            // tc-big).
            let vocab = self.config.vocab_size;
            let limits: Vec<(usize, usize)> = row_sentence
                .iter()
                .map(|&i| {
                    let s = &searches[i];
                    (s.running[0].tokens.len(), s.max_length)
                })
                .collect();
            // And each row's best 2k continuations (the whole step's best 2k are among
            // them), so that the sentences' searches read 2k candidates a beam, not the
            // vocabulary: the scan on one thread was 5% of a tc-big beam-4 run.
            let bases: Vec<f32> = active
                .iter()
                .flat_map(|&i| searches[i].running.iter().map(|h| h.score))
                .collect();
            let tops: Vec<std::sync::OnceLock<Vec<(f32, usize)>>> = (0..bases.len())
                .map(|_| std::sync::OnceLock::new())
                .collect();
            tercuman_kernels::par::par_chunks(
                &mut logits,
                vocab,
                || (),
                |_, r, row| {
                    self.scores(row, limits[r].0, limits[r].1, true);
                    let top = best_of_row(row, bases[r], 2 * beams);
                    tops[r].set(top).expect("each row once");
                },
            );
            let mut tops: Vec<Vec<(f32, usize)>> = tops
                .into_iter()
                .map(|t| t.into_inner().expect("every row"))
                .collect();
            let mut next_rows = Vec::new();
            let mut next_sentence = Vec::new();
            let mut still = Vec::new();
            let mut base = 0usize;
            for &i in &active {
                let search = &mut searches[i];
                let n = search.running.len();
                let rows: Vec<Vec<(f32, usize)>> = tops.drain(..n).collect();
                let sources = search.advance_among(&rows, vocab, g.eos);
                if !search.done {
                    next_rows.extend(sources.iter().map(|&b| (base + b) as u32));
                    next_sentence.extend(sources.iter().map(|_| i));
                    still.push(i);
                }
                base += n;
            }
            if !still.is_empty() {
                state.select(&next_rows)?;
            }
            row_sentence = next_sentence;
            active = still;
        }
        Ok(searches.into_iter().map(BeamSearch::finished).collect())
    }
}

/// A hypothesis of the beam search: its tokens and summed log-probability.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    score: f32,
}

/// The beam search of one sentence, as transformers runs it (`_beam_search`, length penalty
/// on finished hypotheses, `early_stopping=False`).
struct BeamSearch {
    beams: usize,
    max_length: usize,
    length_penalty: f32,
    running: Vec<Hypothesis>,
    /// Best first, at most `beams`; scores length-normalised.
    finished: Vec<Hypothesis>,
    /// Whether a running beam may still beat the worst finished one.
    improvable: bool,
    done: bool,
}

impl BeamSearch {
    fn new(start: u32, beams: usize, max_length: usize, length_penalty: f32) -> Self {
        BeamSearch {
            beams,
            max_length,
            length_penalty,
            running: vec![Hypothesis {
                tokens: vec![start],
                score: 0.0,
            }],
            finished: Vec::new(),
            improvable: true,
            done: false,
        }
    }

    /// One step: `scores[b]` are the processed log-probabilities after running beam `b`.
    /// Returns, for each new running beam, the running beam it continues. (Decoding picks
    /// each row's best continuations on the threads and calls `advance_among`.)
    #[cfg(test)]
    fn advance<S: AsRef<[f32]>>(&mut self, scores: &[S], eos: u32) -> Vec<usize> {
        let vocab = scores[0].as_ref().len();
        let rows: Vec<Vec<(f32, usize)>> = scores
            .iter()
            .enumerate()
            .map(|(b, s)| best_of_row(s.as_ref(), self.running[b].score, 2 * self.beams))
            .collect();
        self.advance_among(&rows, vocab, eos)
    }

    /// One step given each running beam's best 2k continuations ([`best_of_row`]; the step's
    /// best 2k are among them). Returns, for each new running beam, the running beam it
    /// continues.
    ///
    /// Long (~80 lines) on purpose: it is transformers' `_beam_search` step (top-2k candidates,
    /// finished hypotheses, the early-stop test) in the same order, so that the two can be
    /// read side by side; parity with it is exact (tests/it/marian_parity.rs).
    fn advance_among(&mut self, rows: &[Vec<(f32, usize)>], vocab: usize, eos: u32) -> Vec<usize> {
        let k = 2 * self.beams;
        let cur_len = self.running[0].tokens.len();
        // The top 2k continuations over all beams, best first (ties: lower beam, then lower
        // token, as torch.topk on the flattened scores), from each beam's own best 2k.
        let mut cands: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (b, row) in rows.iter().enumerate() {
            for &(score, t) in row {
                keep_best(&mut cands, (score, b * vocab + t), k);
            }
        }
        let hits = |token: u32| token == eos || cur_len + 1 >= self.max_length;

        // Finished: those among the top `beams` candidates that end here, length-normalised.
        if self.improvable {
            let norm = (cur_len as f32).powf(self.length_penalty);
            for &(score, flat) in cands.iter().take(self.beams) {
                let (b, t) = (flat / vocab, (flat % vocab) as u32);
                if hits(t) && score > f32::NEG_INFINITY {
                    let mut tokens = self.running[b].tokens.clone();
                    tokens.push(t);
                    self.finished.push(Hypothesis {
                        tokens,
                        score: score / norm,
                    });
                }
            }
            self.finished.sort_by(|a, b| {
                b.score
                    .partial_cmp(&a.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            self.finished.truncate(self.beams);
        }

        // Running: the best `beams` candidates that do not end here.
        let mut running = Vec::with_capacity(self.beams);
        let mut sources = Vec::with_capacity(self.beams);
        for &(score, flat) in &cands {
            let (b, t) = (flat / vocab, (flat % vocab) as u32);
            if hits(t) || score == f32::NEG_INFINITY || running.len() == self.beams {
                continue;
            }
            let mut tokens = self.running[b].tokens.clone();
            tokens.push(t);
            running.push(Hypothesis { tokens, score });
            sources.push(b);
        }
        let all_hit = running.is_empty();
        self.running = running;

        // The early-stop rule: stop once every finished slot is taken and the best running
        // beam, normalised by its length, cannot beat the worst of them.
        if self.improvable && self.finished.len() == self.beams {
            if let Some(best) = self.running.first() {
                let len = (cur_len as f32).powf(self.length_penalty);
                let worst = self.finished.last().map_or(f32::NEG_INFINITY, |h| h.score);
                self.improvable = best.score / len > worst;
            }
        }
        self.done = all_hit || !self.improvable;
        sources
    }

    /// The finished hypotheses' tokens, best first.
    fn finished(self) -> Vec<Vec<u32>> {
        self.finished.into_iter().map(|h| h.tokens).collect()
    }
}

/// Adds candidate `c` (score, index) to `cands` (the best so far, best first, at most `k`),
/// candidates coming in increasing index order: ties rank by lower index, as `torch.topk`
/// ranks them. Nearly every candidate is rejected by one comparison with the worst kept,
/// where collecting and partially sorting all beams x vocab candidates was 6% of a beam-4 run.
fn keep_best(cands: &mut Vec<(f32, usize)>, c: (f32, usize), k: usize) {
    // One that only ties the worst kept ranks after it.
    let beats_worst = c.0.partial_cmp(&cands.last().map_or(f32::NAN, |w| w.0))
        == Some(std::cmp::Ordering::Greater);
    if cands.len() == k && !beats_worst {
        return;
    }
    let by_score = |a: &(f32, usize), b: &(f32, usize)| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(&b.1))
    };
    let at = cands.partition_point(|x| by_score(x, &c) == std::cmp::Ordering::Less);
    cands.insert(at, c);
    cands.truncate(k);
}

/// A beam's best `k` continuations: (its score plus the token's log-probability, token), best
/// first, equals by token. Ranked as the whole step ranks them (`keep_best`), so that any of
/// the step's best `k` continuing this beam is among them; and equal scores stay in token
/// order, so that passed to `keep_best` beam after beam they still come in index order
/// wherever it matters.
fn best_of_row(lp: &[f32], base: f32, k: usize) -> Vec<(f32, usize)> {
    let mut best = Vec::with_capacity(k + 1);
    for (t, &l) in lp.iter().enumerate() {
        keep_best(&mut best, (l + base, t), k);
    }
    best
}

/// Index of the largest value, the first of equals (as `torch.argmax`).
pub(super) fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

/// `(x - max) - ln(sum(exp(x - max)))` in place, the subtractions in the order torch makes
/// them, so that rounding matches on near-ties.
pub(super) fn log_softmax(xs: &mut [f32]) {
    tercuman_kernels::softmax::log_softmax(xs);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step's best 2k continuations from each beam's own best 2k equal those of one scan
    /// over all beams' scores (the former way), ties and all: scores drawn from a few values,
    /// so that many tie, before and after the beams' own scores are added.
    #[test]
    fn the_best_continuations_per_beam_hold_the_steps_best() {
        let (vocab, beams) = (300usize, 4usize);
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for round in 0..50 {
            let scores: Vec<Vec<f32>> = (0..beams)
                .map(|_| {
                    (0..vocab)
                        .map(|_| -((next() % 6) as f32) * 0.37 - 1.0)
                        .collect()
                })
                .collect();
            let base: Vec<f32> = (0..beams).map(|_| -((next() % 3) as f32) * 0.37).collect();
            let mut want: Vec<(f32, usize)> = Vec::new();
            for (b, s) in scores.iter().enumerate() {
                for (t, &lp) in s.iter().enumerate() {
                    keep_best(&mut want, (lp + base[b], b * vocab + t), 2 * beams);
                }
            }
            let mut got: Vec<(f32, usize)> = Vec::new();
            for (b, s) in scores.iter().enumerate() {
                for (score, t) in best_of_row(s, base[b], 2 * beams) {
                    keep_best(&mut got, (score, b * vocab + t), 2 * beams);
                }
            }
            assert_eq!(got, want, "round {round}");
            // And the scan itself against sorting every candidate (score down, index up).
            let mut all: Vec<(f32, usize)> = scores
                .iter()
                .enumerate()
                .flat_map(|(b, s)| {
                    let base = base[b];
                    s.iter()
                        .enumerate()
                        .map(move |(t, &lp)| (lp + base, b * vocab + t))
                })
                .collect();
            all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            all.truncate(2 * beams);
            assert_eq!(want, all, "round {round}");
        }
    }

    #[test]
    fn beam_search_keeps_finished_hypotheses_length_normalised() {
        // Two tokens and eos (2); eos is likely at once, so the first step finishes a
        // hypothesis of one token while two others run on.
        let mut s = BeamSearch::new(9, 2, 10, 1.0);
        let lp = |p: [f32; 3]| p.iter().map(|x| x.ln()).collect::<Vec<_>>();
        let src = s.advance(&[lp([0.3, 0.2, 0.5])], 2);
        assert_eq!(src, [0, 0]);
        assert_eq!(s.finished.len(), 1);
        assert_eq!(s.finished[0].tokens, [9, 2]);
        assert_eq!(s.running[0].tokens, [9, 0]);
        // Both running beams end next: divided by its two tokens, [9, 0, 2] (0.3 x 0.98)
        // beats [9, 2] (0.5) and [9, 1, 2] drops out; what still runs is far worse, so the
        // search stops.
        let src = s.advance(&[lp([0.01, 0.01, 0.98]), lp([0.01, 0.01, 0.98])], 2);
        assert_eq!(src, [0, 0]);
        let finished: Vec<_> = s.finished.iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(finished, [vec![9, 0, 2], vec![9, 2]]);
        assert!(s.done);
        assert_eq!(s.finished()[0], [9, 0, 2]);
    }
}
