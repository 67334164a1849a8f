//! GGUF files: reading the header (metadata and tensor index, no weights), checking that a
//! download is whole, joining a model split in parts (`NAME-00001-of-00003.gguf`, as llama.cpp's
//! `gguf-split` writes them), and the one metadata reader every architecture and the tokenizer
//! use.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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

/// The file names of a split model, given the name of any of its parts
/// (`NAME-0000K-of-0000N.gguf`, the pattern llama.cpp's `gguf-split` writes), or `None` for a
/// name that is not a part.
pub fn split_parts(file_name: &str) -> Option<Vec<String>> {
    let stem = file_name.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, number) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if prefix.is_empty() || !digits(count) || !digits(number) {
        return None;
    }
    let n: usize = count.parse().ok()?;
    let k: usize = number.parse().ok()?;
    if k == 0 || k > n {
        return None;
    }
    Some(
        (1..=n)
            .map(|i| format!("{prefix}-{i:05}-of-{n:05}.gguf"))
            .collect(),
    )
}

/// An integer metadata value of any width, as gguf writers differ (`split.count` is u16,
/// `split.tensors.count` i32).
fn meta_int(ct: &Content, key: &str) -> Option<i64> {
    Some(match ct.metadata.get(key)? {
        Value::U8(v) => *v as i64,
        Value::I8(v) => *v as i64,
        Value::U16(v) => *v as i64,
        Value::I16(v) => *v as i64,
        Value::U32(v) => *v as i64,
        Value::I32(v) => *v as i64,
        Value::U64(v) => i64::try_from(*v).ok()?,
        Value::I64(v) => *v,
        _ => return None,
    })
}

/// The tensor bytes of a model: one file, or the parts of a split model read as one address
/// space, part after part. The joined header's tensor offsets point into this space, so the
/// architectures read a split model exactly as they read one file.
pub struct Weights {
    parts: Vec<(File, u64)>,
    len: u64,
    pos: u64,
}

impl Weights {
    fn new(files: Vec<File>) -> std::io::Result<Weights> {
        let mut parts = Vec::with_capacity(files.len());
        let mut len = 0;
        for f in files {
            let size = f.metadata()?.len();
            parts.push((f, len));
            len += size;
        }
        Ok(Weights { parts, len, pos: 0 })
    }

    /// The number of files (1 for a model in one file).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }
}

impl tercuman_kernels::storage::Source for Weights {
    /// A tensor's bytes mapped from the part that holds them (a tensor never straddles two).
    fn mapped(&mut self, offset: u64, len: usize) -> Option<tercuman_kernels::storage::Bytes> {
        let i = self
            .parts
            .partition_point(|(_, start)| *start <= offset)
            .checked_sub(1)?;
        let end = self.parts.get(i + 1).map_or(self.len, |(_, start)| *start);
        if offset + len as u64 > end {
            return None;
        }
        let (file, start) = &self.parts[i];
        tercuman_kernels::storage::map_range(file, offset - start, len).ok()
    }
}

impl Read for Weights {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.parts.partition_point(|(_, start)| *start <= self.pos) - 1;
        let end = self.parts.get(i + 1).map_or(self.len, |(_, start)| *start);
        let (file, start) = &mut self.parts[i];
        file.seek(SeekFrom::Start(self.pos - *start))?;
        let want = buf.len().min((end - self.pos) as usize);
        let n = file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Weights {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// Opens a GGUF model for loading: its header, checked whole, and its tensor bytes. A part of
/// a split model (`NAME-00001-of-00002.gguf`) opens all its parts, which must lie beside it, and
/// joins them: the first part's metadata, every part's tensors.
pub fn open(path: &Path) -> Result<(Content, Weights)> {
    let (ct, file) = read_header(path)?;
    check_complete(&ct, &file).map_err(|m| invalid(path, m))?;
    let count = meta_int(&ct, "split.count").unwrap_or(1);
    let io = |e: std::io::Error| Error::ModelRead {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    if count <= 1 {
        return Ok((ct, Weights::new(vec![file]).map_err(io)?));
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let names = split_parts(&name)
        .filter(|n| n.len() as i64 == count)
        .ok_or_else(|| {
            invalid(
                path,
                format!("is part of a model split in {count} files, but its name does not say which (NAME-00001-of-{count:05}.gguf); keep the names the parts were published with"),
            )
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    join_parts(ct, file, &paths)
}

/// Reads parts 2..N of a split model whose first part's header is `first`, and joins them.
fn join_parts(first: Content, first_file: File, paths: &[PathBuf]) -> Result<(Content, Weights)> {
    let n = paths.len() as i64;
    let part_no = meta_int(&first, "split.no").unwrap_or(0);
    if part_no != 0 {
        return Err(invalid(
            &paths[part_no.clamp(0, n - 1) as usize],
            format!(
                "is part {} of {n}; pass the first part, {}",
                part_no + 1,
                paths[0].display()
            ),
        ));
    }
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        return Err(invalid(
            missing,
            format!("is missing: the model is split in {n} files and all must lie beside {} (for a model named by card: `tercuman models fetch NAME` gets them all)", paths[0].display()),
        ));
    }
    let mut parts = vec![(first, first_file)];
    for path in &paths[1..] {
        let (ct, file) = read_header(path)?;
        check_complete(&ct, &file).map_err(|m| invalid(path, m))?;
        parts.push((ct, file));
    }
    let tensors = joined_tensors(&parts, paths)?;
    let mut parts = parts.into_iter();
    let (first, first_file) = parts.next().expect("the first part");
    let files = std::iter::once(first_file)
        .chain(parts.map(|(_, f)| f))
        .collect();
    let joined = Content {
        magic: first.magic,
        metadata: first.metadata,
        tensor_infos: tensors,
        tensor_data_offset: 0,
    };
    let weights = Weights::new(files).map_err(|e| invalid(&paths[0], e.to_string()))?;
    Ok((joined, weights))
}

fn invalid(path: &Path, message: String) -> Error {
    Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    }
}

/// The tensor index of the parts read as one address space (part after part): each part's
/// number and count checked against its name, no tensor twice, as many as the first part says.
fn joined_tensors(
    parts: &[(Content, File)],
    paths: &[PathBuf],
) -> Result<HashMap<String, TensorInfo>> {
    let n = paths.len() as i64;
    let mut tensors: HashMap<String, TensorInfo> = HashMap::new();
    let mut base = 0u64;
    for (i, ((ct, file), path)) in parts.iter().zip(paths).enumerate() {
        let (no, count) = (meta_int(ct, "split.no"), meta_int(ct, "split.count"));
        if no != Some(i as i64) || count != Some(n) {
            let shown =
                |v: Option<i64>, plus: i64| v.map_or("?".into(), |v| (v + plus).to_string());
            return Err(invalid(
                path,
                format!("says it is part {} of {}, but its name says part {} of {n}; the parts do not belong together: download them again", shown(no, 1), shown(count, 0), i + 1),
            ));
        }
        for (name, t) in &ct.tensor_infos {
            let rebased = TensorInfo {
                ggml_dtype: t.ggml_dtype,
                shape: t.shape.clone(),
                offset: base + ct.tensor_data_offset + t.offset,
            };
            if tensors.insert(name.clone(), rebased).is_some() {
                return Err(invalid(
                    path,
                    format!("holds tensor {name} a second time; the parts do not belong together"),
                ));
            }
        }
        base += file
            .metadata()
            .map_err(|e| invalid(path, e.to_string()))?
            .len();
    }
    let expected = meta_int(&parts[0].0, "split.tensors.count");
    if let Some(expected) = expected.filter(|e| *e != tensors.len() as i64) {
        return Err(invalid(
            &paths[0],
            format!("the {n} parts hold {} tensors, but the first part says {expected}; download the parts again", tensors.len()),
        ));
    }
    Ok(tensors)
}
