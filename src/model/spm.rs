//! SentencePiece BPE, as llama.cpp and the `tokenizers` crate run it on a GGUF's pieces and
//! scores: written here because the GGUF holds no merges, and turning the scores into the
//! merge table the `tokenizers` crate needs took 0.7 s and 70-90 MB on Gemma's 262144 pieces
//! (two thirds of the 270M model's load). This needs only a map from piece to id.
//!
//! Encoding: added pieces are cut out of the raw text first, leftmost and longest first
//! (user-defined pieces always: Gemma's runs of newlines and spaces; control pieces such as
//! `<start_of_turn>` only where a prompt template asks for them). Each stretch between them has
//! its spaces written as `▁` (and one `▁` put before it where the file says
//! `add_space_prefix`), starts as one symbol per character (a character the vocabulary lacks
//! becomes its UTF-8 bytes' `<0xXX>` pieces), and adjacent symbols merge while any pair's
//! concatenation is a normal piece: the pair whose piece scores highest first, then the
//! lower piece id, the shorter left part, the leftmost pair. That is the order of the merge
//! table the `tokenizers` crate was given before (`tests/it/tokenizer_parity.rs` builds it and
//! compares on a few thousand lines), which matches llama.cpp's ids.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{Error, Result};

/// llama.cpp's `llama_token_type` values stored in `tokenizer.ggml.token_type`.
pub const TOKEN_NORMAL: u32 = 1;
pub const TOKEN_UNKNOWN: u32 = 2;
pub const TOKEN_CONTROL: u32 = 3;
pub const TOKEN_USER_DEFINED: u32 = 4;

/// The SentencePiece word-boundary marker.
const SPACE: &str = "\u{2581}";

/// A SentencePiece BPE vocabulary: pieces, scores, token types.
pub struct Spm {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<u32>,
    /// Piece to id; the first id of a piece listed twice.
    ids: HashMap<String, u32, FastState>,
    /// The `<0xXX>` pieces, by byte.
    bytes: [Option<u32>; 256],
    unk: Option<u32>,
    add_space_prefix: bool,
    /// Added pieces (control, unknown, user-defined) by their first byte, longest first.
    added: Vec<Vec<u32>>,
}

impl Spm {
    pub fn new(
        pieces: Vec<String>,
        scores: Vec<f32>,
        types: Vec<u32>,
        unk: Option<u32>,
        add_space_prefix: bool,
    ) -> Result<Spm> {
        if scores.len() != pieces.len() || types.len() != pieces.len() {
            return Err(Error::Tokenizer(
                "tokens, scores and token types differ in length".into(),
            ));
        }
        let mut ids: HashMap<String, u32, FastState> =
            HashMap::with_capacity_and_hasher(pieces.len(), FastState);
        for (id, piece) in pieces.iter().enumerate() {
            ids.entry(piece.clone()).or_insert(id as u32);
        }
        let mut bytes = [None; 256];
        for (b, slot) in bytes.iter_mut().enumerate() {
            *slot = ids.get(format!("<0x{b:02X}>").as_str()).copied();
        }
        let mut added: Vec<Vec<u32>> = vec![Vec::new(); 256];
        for (id, piece) in pieces.iter().enumerate() {
            let canonical = ids[piece.as_str()] == id as u32;
            let kind = matches!(
                types[id],
                TOKEN_CONTROL | TOKEN_UNKNOWN | TOKEN_USER_DEFINED
            );
            if kind && canonical && !piece.is_empty() {
                added[usize::from(piece.as_bytes()[0])].push(id as u32);
            }
        }
        for list in &mut added {
            list.sort_by_key(|&id| std::cmp::Reverse(pieces[id as usize].len()));
        }
        let unk = unk.filter(|&id| (id as usize) < pieces.len());
        Ok(Spm {
            pieces,
            scores,
            types,
            ids,
            bytes,
            unk,
            add_space_prefix,
            added,
        })
    }

    /// Number of distinct pieces.
    pub fn vocab_size(&self) -> usize {
        self.ids.len()
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    fn special(&self, id: u32) -> bool {
        matches!(self.types[id as usize], TOKEN_CONTROL | TOKEN_UNKNOWN)
    }

    /// Token ids of `text`; with `parse_special`, control pieces written in the text become
    /// their ids, otherwise they are read as text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            match self.added_at(text, i) {
                Some(id) => {
                    let len = self.pieces[id as usize].len();
                    if parse_special || !self.special(id) {
                        self.encode_segment(&text[start..i], &mut out);
                        out.push(id);
                        start = i + len;
                    }
                    i += len;
                }
                None => i += 1,
            }
        }
        self.encode_segment(&text[start..], &mut out);
        out
    }

    /// The longest added piece that starts at byte `i` (a character boundary or not: added
    /// pieces are whole UTF-8, so they match only at one).
    fn added_at(&self, text: &str, i: usize) -> Option<u32> {
        let rest = &text.as_bytes()[i..];
        self.added[usize::from(rest[0])]
            .iter()
            .copied()
            .find(|&id| {
                let piece = self.pieces[id as usize].as_bytes();
                rest.starts_with(piece)
            })
    }

    /// One stretch of text between added pieces, normalized and merged.
    fn encode_segment(&self, raw: &str, out: &mut Vec<u32>) {
        if raw.is_empty() {
            return;
        }
        let mut text = String::with_capacity(raw.len() + 3 * (raw.len() / 4 + 1));
        if self.add_space_prefix {
            text.push_str(SPACE);
        }
        for c in raw.chars() {
            match c {
                ' ' => text.push_str(SPACE),
                c => text.push(c),
            }
        }
        let mut symbols = self.initial_symbols(&text);
        self.merge(&text, &mut symbols);
        out.extend(symbols.iter().filter(|s| s.len > 0).map(|s| s.id));
    }

    /// One symbol per character: the character's piece, else its bytes' pieces, else the
    /// unknown piece (runs of unknown characters fused into one).
    fn initial_symbols(&self, text: &str) -> Vec<Symbol> {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        let mut unk: Option<(usize, usize)> = None;
        let push = |symbols: &mut Vec<Symbol>, id: u32, start: usize, len: usize| {
            let n = symbols.len() as isize;
            symbols.push(Symbol {
                id,
                start,
                len,
                prev: n - 1,
                next: n + 1,
            });
        };
        for (start, c) in text.char_indices() {
            let len = c.len_utf8();
            let piece = &text[start..start + len];
            if let Some(&id) = self.ids.get(piece) {
                if let (Some((s, l)), Some(u)) = (unk.take(), self.unk) {
                    push(&mut symbols, u, s, l);
                }
                push(&mut symbols, id, start, len);
                continue;
            }
            let from_bytes: Option<Vec<u32>> =
                piece.bytes().map(|b| self.bytes[b as usize]).collect();
            if let Some(ids) = from_bytes {
                for (k, id) in ids.into_iter().enumerate() {
                    push(&mut symbols, id, start + k, 1);
                }
                continue;
            }
            if self.unk.is_some() {
                unk = Some(match unk {
                    Some((s, l)) => (s, l + len),
                    None => (start, len),
                });
            }
        }
        if let (Some((s, l)), Some(u)) = (unk, self.unk) {
            push(&mut symbols, u, s, l);
        }
        if let Some(last) = symbols.last_mut() {
            last.next = -1;
        }
        symbols
    }

    /// The piece two adjacent symbols make, if they merge: both normal pieces, and their
    /// text together a normal piece.
    fn pair(&self, text: &str, left: &Symbol, right: &Symbol) -> Option<Merge> {
        let normal = |id: u32| self.types[id as usize] == TOKEN_NORMAL;
        if !normal(left.id) || !normal(right.id) {
            return None;
        }
        let joined = &text[left.start..right.start + right.len];
        let &id = self.ids.get(joined)?;
        normal(id).then(|| Merge {
            score: self.scores[id as usize],
            id,
            split: left.len as u32,
            pos: 0,
        })
    }

    /// Merges adjacent symbols, best pair first, until no pair makes a piece.
    fn merge(&self, text: &str, symbols: &mut [Symbol]) {
        let mut queue = BinaryHeap::with_capacity(symbols.len());
        for pos in 0..symbols.len().saturating_sub(1) {
            if let Some(m) = self.pair(text, &symbols[pos], &symbols[pos + 1]) {
                queue.push(Merge { pos, ..m });
            }
        }
        while let Some(top) = queue.pop() {
            let current = symbols[top.pos];
            if current.len == 0 || current.next < 0 {
                continue;
            }
            let next = current.next as usize;
            let right = symbols[next];
            // An entry for a pair that has changed since is stale, unless the pair now there
            // makes the same piece.
            if self
                .pair(text, &current, &right)
                .is_none_or(|m| m.id != top.id)
            {
                continue;
            }
            let merged = &mut symbols[top.pos];
            merged.id = top.id;
            merged.len += right.len;
            merged.next = right.next;
            symbols[next].len = 0;
            if right.next >= 0 {
                symbols[right.next as usize].prev = top.pos as isize;
            }
            let current = symbols[top.pos];
            if current.prev >= 0 {
                let prev = current.prev as usize;
                if let Some(m) = self.pair(text, &symbols[prev], &current) {
                    queue.push(Merge { pos: prev, ..m });
                }
            }
            if current.next >= 0 {
                if let Some(m) = self.pair(text, &current, &symbols[current.next as usize]) {
                    queue.push(Merge { pos: top.pos, ..m });
                }
            }
        }
    }

    /// The text of `ids`: `▁` as a space, `<0xXX>` runs as their UTF-8 (each byte of an
    /// invalid run as U+FFFD), the space prefix taken off; control pieces left out when
    /// `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let mut out = String::new();
        let mut pending: Vec<u8> = Vec::new();
        let flush = |out: &mut String, pending: &mut Vec<u8>| {
            if pending.is_empty() {
                return;
            }
            match std::str::from_utf8(pending) {
                Ok(s) => out.push_str(s),
                Err(_) => (0..pending.len()).for_each(|_| out.push('\u{fffd}')),
            }
            pending.clear();
        };
        for &id in ids {
            let Some(piece) = self.pieces.get(id as usize) else {
                continue;
            };
            if skip_special && self.special(id) {
                continue;
            }
            if let Some(b) = byte_piece(piece) {
                pending.push(b);
                continue;
            }
            flush(&mut out, &mut pending);
            out.push_str(&piece.replace(SPACE, " "));
        }
        flush(&mut out, &mut pending);
        if self.add_space_prefix && out.starts_with(' ') {
            out.remove(0);
        }
        out
    }
}

/// The byte of a `<0xXX>` piece.
fn byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2)
        .then(|| u8::from_str_radix(hex, 16).ok())
        .flatten()
}

/// A symbol of a stretch being merged: its piece, its bytes in the normalized text, and its
/// neighbours (a linked list over the initial symbols; a merged-away symbol has `len` 0).
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
}

/// A candidate merge: the piece it makes and where. The queue pops the highest score, then
/// the lowest piece id, the shortest left part, the leftmost position.
#[derive(Clone, Copy)]
struct Merge {
    score: f32,
    id: u32,
    split: u32,
    pos: usize,
}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.id.cmp(&self.id))
            .then(other.split.cmp(&self.split))
            .then(other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Merge {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Merge {}

/// FxHash's multiply-rotate over the key's bytes: the piece map is built once per load over
/// 262144 short strings, where std's SipHash costs more than the rest of the build.
#[derive(Default, Clone, Copy)]
pub struct FastState;

impl std::hash::BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: `▁ab` scores above `ab`, which scores above `bc`.
    fn toy(add_space_prefix: bool) -> Spm {
        let pieces: Vec<String> = [
            "<unk>", "<start>", "\n\n", "<0x41>", "<0xC3>", "<0xA7>", "a", "b", "c", "▁", "ab",
            "bc", "▁a", "▁ab", "abc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let scores = vec![
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, -2.0, -3.0, -4.0, -1.5, -5.0,
        ];
        let mut types = vec![TOKEN_NORMAL; pieces.len()];
        types[0] = TOKEN_UNKNOWN;
        types[1] = TOKEN_CONTROL;
        types[2] = TOKEN_USER_DEFINED;
        (3..6).for_each(|i| types[i] = 6);
        Spm::new(pieces, scores, types, Some(0), add_space_prefix).unwrap()
    }

    #[test]
    fn the_best_scoring_pair_merges_first() {
        let t = toy(false);
        // `bc` (-3) loses to `ab` (-2): a|b|c -> ab|c -> abc.
        assert_eq!(t.encode("abc", false), [14]);
        // ▁ a b: ▁a (-4) and ab (-2); ab first, then ▁ab (-1.5).
        assert_eq!(t.encode(" ab", false), [13]);
        assert_eq!(t.encode("cab", false), [8, 10]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes_or_unk() {
        let t = toy(false);
        // `ç` has both bytes; `d` has none and is unknown, two in a row fused.
        assert_eq!(t.encode("ç", false), [4, 5]);
        assert_eq!(t.encode("addb", false), [6, 0, 7]);
    }

    #[test]
    fn added_pieces_are_cut_out_first() {
        let t = toy(false);
        assert_eq!(t.encode("a\n\nb", false), [6, 2, 7]);
        // The control piece is text unless asked for.
        assert_eq!(t.encode("a<start>b", true), [6, 1, 7]);
        assert!(!t.encode("a<start>b", false).contains(&1));
    }

    #[test]
    fn decoding_restores_spaces_bytes_and_the_prefix() {
        let t = toy(true);
        let ids = t.encode("ab cç", false);
        assert_eq!(ids[0], 13, "the space prefix merges into ▁ab");
        assert_eq!(t.decode(&ids, false), "ab cç");
        assert_eq!(t.decode(&[6, 4], false), "a\u{fffd}");
        assert_eq!(t.decode(&[6, 1, 7], true), "ab");
    }
}
