//! The Turkish text before any model sees it: reading an article file into blocks
//! ([`input`]: encodings, structure) and cutting a block into pieces at Turkish sentence
//! boundaries ([`chunk`]).

pub mod chunk;
pub mod input;

pub use input::{Article, Block, BlockKind};

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The bytes of the file `path` (`-` is stdin), with how to name it in messages; a directory
/// is an error. Shared by every command that reads a text file.
pub fn read_bytes(path: &Path) -> Result<(Vec<u8>, String)> {
    Ok(if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(Error::ReadStdin)?;
        (buf, "standard input".to_string())
    } else {
        if path.is_dir() {
            return Err(Error::ReadInput {
                path: path.to_path_buf(),
                source: std::io::Error::other("it is a directory; pass an article's text file"),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::ReadInput {
            path: path.to_path_buf(),
            source,
        })?;
        (bytes, path.display().to_string())
    })
}

/// Decodes the text file `path` (`-` is stdin) in its detected encoding.
pub fn read_text(path: &Path) -> Result<String> {
    let (bytes, what) = read_bytes(path)?;
    input::decode(&bytes, &what)
}

/// Reads and parses the article named by `path` (`-` is stdin), in its detected encoding.
pub fn read_article(path: &Path) -> Result<Article> {
    read_article_as(path, None, true)
}

/// Reads and parses the article named by `path` (`-` is stdin); `encoding` forces one, and a
/// guessed legacy encoding is mentioned on stderr unless `quiet`.
pub fn read_article_as(path: &Path, encoding: Option<&str>, quiet: bool) -> Result<Article> {
    let (bytes, what) = read_bytes(path)?;
    let decoded = input::decode_with(&bytes, &what, encoding)?;
    if decoded.guessed && !quiet {
        eprintln!(
            "tercuman: {what} is not UTF-8; read it as {} (detected); pass --encoding to override",
            decoded.encoding
        );
    }
    let article = input::parse(&decoded.text);
    if article.blocks.is_empty() {
        return Err(Error::EmptyInput(what));
    }
    Ok(article)
}
