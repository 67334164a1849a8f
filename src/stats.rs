//! Figures of a run: tokens read and generated, and the time each took, summed over the
//! models that worked on it (Marian or chat), for the stats line, JSON output and `bench`.

use std::time::Duration;

/// Token and time counts over a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    #[serde(with = "secs")]
    pub prefill_time: Duration,
    #[serde(with = "secs")]
    pub decode_time: Duration,
    /// Wall time finding and loading models (a batch loads them for its first article).
    #[serde(with = "secs")]
    pub load_time: Duration,
    /// Wall time of the translation, and of the summary (its model's load not included).
    #[serde(with = "secs")]
    pub translate_time: Duration,
    #[serde(with = "secs")]
    pub summarize_time: Duration,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

impl Stats {
    /// Adds the work of another model to these figures.
    pub fn add(&mut self, other: &Stats) {
        self.prompt_tokens += other.prompt_tokens;
        self.generated_tokens += other.generated_tokens;
        self.prefill_time += other.prefill_time;
        self.decode_time += other.decode_time;
        self.load_time += other.load_time;
        self.translate_time += other.translate_time;
        self.summarize_time += other.summarize_time;
    }

    /// The work done since `earlier` was taken from the same models.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            prompt_tokens: self.prompt_tokens.saturating_sub(earlier.prompt_tokens),
            generated_tokens: self
                .generated_tokens
                .saturating_sub(earlier.generated_tokens),
            prefill_time: self.prefill_time.saturating_sub(earlier.prefill_time),
            decode_time: self.decode_time.saturating_sub(earlier.decode_time),
            load_time: self.load_time.saturating_sub(earlier.load_time),
            translate_time: self.translate_time.saturating_sub(earlier.translate_time),
            summarize_time: self.summarize_time.saturating_sub(earlier.summarize_time),
        }
    }

    pub fn decode_tps(&self) -> f64 {
        self.generated_tokens as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
    pub fn prefill_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }
}
