//! GGUF files: reading the header (metadata and tensor index, no weights), checking that a
//! download is whole, and the one metadata reader every architecture and the tokenizer use.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use std::path::Path;

/// A metadata key that is missing or holds another type than expected.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("missing GGUF metadata `{0}`")]
    Missing(String),
    #[error("GGUF metadata `{0}` has the wrong type")]
    WrongType(String),
}

impl From<MetaError> for candle_core::Error {
    fn from(e: MetaError) -> Self {
        candle_core::Error::Msg(e.to_string())
    }
}

impl From<MetaError> for Error {
    fn from(e: MetaError) -> Self {
        Error::Tokenizer(e.to_string())
    }
}

/// Typed access to a GGUF file's metadata.
#[derive(Clone, Copy)]
pub struct Meta<'a>(pub &'a Content);

impl<'a> Meta<'a> {
    /// The value of `key`, of any type.
    pub fn get(self, key: &str) -> std::result::Result<&'a Value, MetaError> {
        self.0
            .metadata
            .get(key)
            .ok_or_else(|| MetaError::Missing(key.to_string()))
    }

    /// The value of the architecture's own `key` (`{arch}.{key}`).
    pub fn arch(self, arch: &str, key: &str) -> std::result::Result<&'a Value, MetaError> {
        self.get(&format!("{arch}.{key}"))
    }

    /// The string `key`, when present and a string.
    pub fn opt_str(self, key: &str) -> Option<&'a str> {
        match self.0.metadata.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The string `key`.
    pub fn str(self, key: &str) -> std::result::Result<&'a str, MetaError> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            _ => Err(MetaError::WrongType(key.to_string())),
        }
    }

    /// The integer `key` as u32, when present and an integer that fits.
    pub fn opt_u32(self, key: &str) -> Option<u32> {
        self.0.metadata.get(key).and_then(|v| v.to_u32().ok())
    }

    /// The boolean `key`, when present and a boolean.
    pub fn opt_bool(self, key: &str) -> Option<bool> {
        self.0.metadata.get(key).and_then(|v| v.to_bool().ok())
    }

    /// The array `key`.
    pub fn array(self, key: &str) -> std::result::Result<&'a [Value], MetaError> {
        match self.get(key)? {
            Value::Array(a) => Ok(a),
            _ => Err(MetaError::WrongType(key.to_string())),
        }
    }
}

/// Reads the GGUF header of `path`: metadata and tensor index, no weights.
pub fn read_header(path: &Path) -> Result<(Content, std::fs::File)> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ModelNotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::ModelRead {
                path: path.to_path_buf(),
                source: Box::new(e),
            }
        }
    })?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::InvalidModel {
            path: path.to_path_buf(),
            message: "is a directory; pass the .gguf file inside it".into(),
        });
    }
    // Buffered: the header is hundreds of thousands of small values (a 262k-token vocabulary
    // is 2.2 s of single read calls unbuffered). Tensors are read later by absolute offset.
    let ct =
        Content::read(&mut std::io::BufReader::with_capacity(1 << 20, &mut file)).map_err(|e| {
            Error::InvalidModel {
                path: path.to_path_buf(),
                message: format!(
                    "not a readable GGUF file ({e}); download it again or pass another file"
                ),
            }
        })?;
    Ok((ct, file))
}

/// Checks that every tensor the header lists lies within the file, so that a truncated
/// download is named as such instead of failing deep inside a layer.
pub fn check_complete(ct: &Content, file: &std::fs::File) -> std::result::Result<(), String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let needed = ct
        .tensor_infos
        .values()
        .map(|t| {
            let blocks = t.shape.elem_count() / t.ggml_dtype.block_size();
            ct.tensor_data_offset + t.offset + (blocks * t.ggml_dtype.type_size()) as u64
        })
        .max()
        .unwrap_or(ct.tensor_data_offset);
    if needed > len {
        return Err(format!(
            "the file is truncated: {len} bytes, but its tensors need {needed}; download it again (for a model named by card: `tercuman models fetch NAME`)"
        ));
    }
    Ok(())
}
