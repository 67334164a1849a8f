//! Evaluation: how well a model translates, in the numbers the field reports. [`score`]
//! computes corpus BLEU, chrF and chrF++ exactly as sacreBLEU does; [`TESTSETS`] are the
//! Turkish→English test sets built into the binary (`testsets/`, with their sources and
//! licences), so that `tercuman eval` works offline.

pub mod score;

/// A line-aligned test set: Turkish sources and English human references.
#[derive(Debug, Clone, Copy)]
pub struct Testset {
    pub name: &'static str,
    pub description: &'static str,
    pub source: &'static str,
    pub reference: &'static str,
}

/// The built-in test sets (see testsets/README.md for sources and licences).
pub const TESTSETS: &[Testset] = &[
    Testset {
        name: "flores200-devtest",
        description:
            "FLORES-200 devtest, 1012 sentences from Wikinews, Wikivoyage, Wikibooks (CC BY-SA 4.0)",
        source: include_str!("../../testsets/flores200-devtest.tr"),
        reference: include_str!("../../testsets/flores200-devtest.en"),
    },
    Testset {
        name: "newstest2018",
        description: "WMT18 news test set, 3000 sentences",
        source: include_str!("../../testsets/newstest2018.tr"),
        reference: include_str!("../../testsets/newstest2018.en"),
    },
    Testset {
        name: "newstest2017",
        description: "WMT17 news test set, 3007 sentences (the checks were tuned on it)",
        source: include_str!("../../testsets/newstest2017.tr"),
        reference: include_str!("../../testsets/newstest2017.en"),
    },
];

/// The test set called `name`.
pub fn testset(name: &str) -> Option<&'static Testset> {
    TESTSETS.iter().find(|t| t.name == name)
}

/// The lines of a line-aligned file's text (a final newline ends the last line, it does not
/// add an empty one).
pub fn lines(text: &str) -> Vec<&str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_test_sets_are_aligned() {
        for (t, n) in TESTSETS.iter().zip([1012, 3000, 3007]) {
            assert_eq!(lines(t.source).len(), n, "{}", t.name);
            assert_eq!(lines(t.reference).len(), n, "{}", t.name);
        }
        assert!(testset("newstest2018").is_some());
        assert!(testset("wmt18").is_none());
    }

    #[test]
    fn lines_keep_empty_ones_but_not_a_final_newline() {
        assert_eq!(lines("a\n\nb\n"), ["a", "", "b"]);
        assert_eq!(lines("a\r\nb"), ["a", "b"]);
        assert!(lines("").is_empty());
    }
}
