//! Findings in JSON output and in the resume checkpoint: `{"kind": "number", "message": ..,
//! "source": {"start", "end", "text"} | null, "translation": ..}`. Written by hand beside
//! `finding.rs` so that the vocabulary of the checks stays plain std (its files compile alone
//! for quick experiments on the eval data).

use super::{Finding, Kind, Span};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
struct SpanRepr {
    start: usize,
    end: usize,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct FindingRepr {
    kind: String,
    message: String,
    source: Option<SpanRepr>,
    translation: Option<SpanRepr>,
}

fn to_repr(s: &Option<Span>) -> Option<SpanRepr> {
    s.as_ref().map(|s| SpanRepr {
        start: s.start,
        end: s.end,
        text: s.text.clone(),
    })
}

fn from_repr(s: Option<SpanRepr>) -> Option<Span> {
    s.map(|s| Span {
        start: s.start,
        end: s.end,
        text: s.text,
    })
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FindingRepr {
            kind: self.kind.as_str().to_string(),
            message: self.message.clone(),
            source: to_repr(&self.source),
            translation: to_repr(&self.translation),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Finding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Finding, D::Error> {
        let r = FindingRepr::deserialize(d)?;
        let kind = Kind::parse(&r.kind).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown finding kind `{}`", r.kind))
        })?;
        Ok(Finding {
            kind,
            message: r.message,
            source: from_repr(r.source),
            translation: from_repr(r.translation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_go_to_json_and_back() {
        let f = Finding {
            kind: Kind::InventedName,
            message: "\"Dalian\" is not in the source".into(),
            source: None,
            translation: Some(Span::of("in Dalian.", 3, 9)),
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"invented_name","message":"\"Dalian\" is not in the source","source":null,"translation":{"start":3,"end":9,"text":"Dalian"}}"#
        );
        let back: Finding = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(
            serde_json::from_str::<Finding>(&json.replace("invented_name", "nonsense")).is_err()
        );
    }
}
