//! Summaries through a remote engine ([`crate::remote`]). A served model cannot be made to
//! write one line at a time as a local one is, so the list is asked for whole and read line by
//! line; each bullet is grounded in its paragraphs as a local summary's is, and when any bullet
//! fails (not English, a number or name its paragraphs lack) the list is asked for once more,
//! sampled and seeded, and each place keeps the bullet with fewer findings. A long article is
//! summarized from notes on its parts, the parts asked for together (`--concurrency`).

use super::{cite, listed, material, one_sentence, Bullet, Request, Summary, SummaryFrom};
use super::{BULLET_TOKENS, NOTES_TOKENS, TEMPLATE_TOKENS};
use crate::chat::prompt::{self, Purpose, Style};
use crate::error::Result;
use crate::remote::{estimate_tokens as tokens, Api, Ask, Client};
use crate::text::chunk::{self, Unit};

/// The temperature of the one retry of a list with a failing bullet.
const RETRY_TEMPERATURE: f64 = 0.8;

/// A served model that summarizes.
#[derive(Clone)]
pub struct RemoteSummarizer {
    pub client: Client,
    style: Style,
    pub context: usize,
    temperature: f64,
    seed: u64,
}

impl RemoteSummarizer {
    pub fn new(client: Client, context: usize, temperature: f64, seed: u64) -> Self {
        let style = client.api().style();
        RemoteSummarizer {
            client,
            style,
            context,
            temperature,
            seed,
        }
    }

    /// The summary the request asks for.
    pub fn summarize(&self, req: &Request) -> Result<Summary> {
        let (text, from) = material(req);
        let language = match from {
            SummaryFrom::Translation => "English",
            SummaryFrom::Source => "Turkish",
        };
        let room = self
            .context
            .saturating_sub(TEMPLATE_TOKENS + req.bullets * BULLET_TOKENS);
        let mut s = if tokens(&text) <= room {
            let mut s = self.list(Purpose::Summarize, &text, language, req)?;
            s.parts = 1;
            s
        } else {
            let budget = self
                .context
                .saturating_sub(TEMPLATE_TOKENS + NOTES_TOKENS)
                .max(64);
            let parts: Vec<&str> = chunk::chunk(&text, Unit::Paragraph, budget, &tokens)
                .into_iter()
                .map(|r| text[r].trim())
                .collect();
            let share = (room / parts.len().max(1)).clamp(24, NOTES_TOKENS);
            let notes = self.notes(&parts, language, req.bullets, share)?;
            let mut s = self.list(Purpose::SummarizeReduce, &notes.join("\n"), "English", req)?;
            s.parts = parts.len();
            s
        };
        s.from = from;
        s.cite = req.cite;
        Ok(s)
    }

    /// Notes on each part, asked for together.
    fn notes(
        &self,
        parts: &[&str],
        language: &str,
        bullets: usize,
        share: usize,
    ) -> Result<Vec<String>> {
        std::thread::scope(|s| {
            let asks: Vec<_> = parts
                .iter()
                .map(|part| {
                    s.spawn(move || -> Result<String> {
                        let segments = prompt::build_in(
                            &self.style,
                            Purpose::SummarizeNotes,
                            part,
                            language,
                            bullets,
                            self.list_start(),
                        )?;
                        let answer = self.client.complete(&self.ask(&segments, share))?;
                        Ok(format!("- {}", answer.text.trim()))
                    })
                })
                .collect();
            asks.into_iter()
                .map(|h| h.join().expect("a notes request panicked"))
                .collect()
        })
    }

    /// The bullet list for `text`; asked for once more when a bullet fails its grounding.
    fn list(&self, task: Purpose, text: &str, language: &str, req: &Request) -> Result<Summary> {
        let n = req.bullets;
        let segments = prompt::build_in(&self.style, task, text, language, n, self.list_start())?;
        let ask = self.ask(&segments, n * BULLET_TOKENS);
        let first = self.bullets(&self.client.complete(&ask)?.text, req);
        let mut out = first;
        if out.len() < n || out.iter().any(|b| !b.findings.is_empty()) {
            let again = self.client.complete(&Ask {
                temperature: RETRY_TEMPERATURE,
                seed: self.seed.wrapping_add(1),
                ..ask
            })?;
            let again = self.bullets(&again.text, req);
            out = better(out, again);
        }
        Ok(listed(out, n))
    }

    /// The bullets of an answer: its list lines, one sentence each, repeats dropped, at most
    /// as many as asked for, each grounded in the paragraphs.
    fn bullets(&self, answer: &str, req: &Request) -> Vec<Bullet> {
        let mut out: Vec<Bullet> = Vec::new();
        // After a few-shot prompt the answer starts inside the first bullet (its marker is in
        // the prompt); after that, and for a chat model, only marked lines are bullets, so
        // that a model that goes on past its list is not read as more bullets.
        let mut first = self.client.api() == Api::Completions;
        for line in answer.lines() {
            let t = line.trim();
            let marked = t.starts_with(['-', '*', '•']) || super::after_number(t).is_some();
            if !(marked || (first && !t.is_empty())) {
                if !out.is_empty() && t.is_empty() {
                    continue;
                }
                first = false;
                continue;
            }
            first = false;
            let text = one_sentence(t);
            if text.is_empty() || out.iter().any(|b| b.text.eq_ignore_ascii_case(&text)) {
                continue;
            }
            let grounding = cite::ground(&text, &req.paragraphs);
            out.push(Bullet {
                text,
                paragraphs: grounding.paragraphs,
                findings: grounding.findings,
            });
            if out.len() == req.bullets {
                break;
            }
        }
        out
    }

    fn ask(&self, segments: &[prompt::Segment], max_tokens: usize) -> Ask {
        Ask {
            prompt: prompt::to_string(segments),
            max_tokens,
            temperature: self.temperature,
            seed: self.seed,
            one_line: false,
        }
    }

    /// What a few-shot answer is made to start with; a chat model's answer is its own.
    fn list_start(&self) -> &'static str {
        match self.client.api() {
            Api::Completions => "\n- ",
            Api::Chat => "",
        }
    }
}

/// Place by place, the bullet with fewer findings (the first list's on a tie); the longer
/// list's extra bullets are kept.
fn better(first: Vec<Bullet>, again: Vec<Bullet>) -> Vec<Bullet> {
    let n = first.len().max(again.len());
    let mut first = first.into_iter();
    let mut again = again.into_iter();
    let mut out: Vec<Bullet> = Vec::with_capacity(n);
    for _ in 0..n {
        let pick = match (first.next(), again.next()) {
            (Some(a), Some(b)) if b.findings.len() < a.findings.len() => b,
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        if !out.iter().any(|b| b.text.eq_ignore_ascii_case(&pick.text)) {
            out.push(pick);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Finding, Kind};

    fn bullet(text: &str, findings: usize) -> Bullet {
        Bullet {
            text: text.into(),
            paragraphs: vec![1],
            findings: (0..findings)
                .map(|_| Finding {
                    kind: Kind::Number,
                    message: String::new(),
                    source: None,
                    translation: None,
                })
                .collect(),
        }
    }

    #[test]
    fn each_place_keeps_the_bullet_with_fewer_findings() {
        let first = vec![bullet("A.", 1), bullet("B.", 0)];
        let again = vec![bullet("A2.", 0), bullet("B2.", 1), bullet("C.", 0)];
        let kept: Vec<String> = better(first, again).into_iter().map(|b| b.text).collect();
        assert_eq!(kept, ["A2.", "B.", "C."]);
    }
}
