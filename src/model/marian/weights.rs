//! A Marian model's weights: indexed in `model.safetensors` and read tensor by tensor as the
//! layers are built (or read whole from `pytorch_model.bin`), converted to f32 whatever their
//! stored type, then packed (f32) or quantized (`--quantize int8`).

use super::{pth, Linear, Norm, Quantize};
use crate::error::{Error, Result};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tercuman_kernels::int8::Int8Builder;
use tercuman_kernels::packed::PackedLinear;

/// Values read at most at once from the file when a matrix is quantized as it is read: 4 MB
/// of f32, so that no f32 copy of a large matrix (tc-big's 233 MB output layer) ever exists.
const READ_CHUNK: usize = 1 << 20;

/// Tensors by name: where their values are, and their shape.
type Index = std::collections::HashMap<String, (Stored, Vec<usize>)>;

/// Where a tensor's values are.
enum Stored {
    /// Read already (`pytorch_model.bin`).
    Values(Vec<f32>),
    /// At `offset` in the safetensors file, as `dtype`.
    InFile { offset: u64, dtype: pth::Dtype },
}

/// The model's tensors by name, each taken out as the layer that uses it is built, so that
/// at most one f32 matrix (or q/k/v's three fused) exists beside the layers built so far.
pub(super) struct Tensors {
    map: Index,
    /// The safetensors file the `InFile` tensors are in.
    file: Option<(std::fs::File, PathBuf)>,
    quantize: Quantize,
}

impl Tensors {
    pub(super) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Every tensor's name and shape.
    #[cfg(test)]
    pub(super) fn shapes(&self) -> std::collections::BTreeMap<String, Vec<usize>> {
        self.map
            .iter()
            .map(|(name, (_, dims))| (name.clone(), dims.clone()))
            .collect()
    }

    /// The tensor `name`, checked to have `shape`, taken out.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Stored> {
        let (v, dims) = self
            .map
            .remove(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("cannot find tensor {name}")))?;
        if dims != shape {
            return Err(candle_core::Error::Msg(format!(
                "{name} has shape {dims:?}, expected {shape:?}"
            ))
            .into());
        }
        Ok(v)
    }

    pub(super) fn take_vec(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let mut all = Vec::with_capacity(shape.iter().product());
        self.take_rows(name, shape, |rows| {
            all.extend_from_slice(rows);
            Ok(())
        })?;
        Ok(all)
    }

    /// Hands the tensor `name`'s values to `f` in order, whole rows (of `shape`'s last
    /// dimension) at a time, about `READ_CHUNK` values per call when read from the file.
    fn take_rows(
        &mut self,
        name: &str,
        shape: &[usize],
        mut f: impl FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        let (offset, dtype) = match self.take(name, shape)? {
            Stored::Values(v) => return f(&v),
            Stored::InFile { offset, dtype } => (offset, dtype),
        };
        let (file, path) = self.file.as_ref().expect("tensors in a file come with it");
        let row = shape.last().copied().unwrap_or(1).max(1);
        let total: usize = shape.iter().product();
        let per_read = (READ_CHUNK / row).max(1) * row;
        // Both buffers kept from piece to piece (a fresh zeroed one per piece was 6% of
        // loading tc-big).
        let (mut bytes, mut values) = (Vec::new(), Vec::new());
        let mut done = 0;
        while done < total {
            let n = per_read.min(total - done);
            bytes.resize(n * dtype.size(), 0);
            file.read_exact_at(&mut bytes, offset + (done * dtype.size()) as u64)
                .map_err(|source| Error::ReadInput {
                    path: path.clone(),
                    source,
                })?;
            assert!(
                pth::to_f32_into(&bytes, dtype, &mut values),
                "a floating-point type"
            );
            f(&values)?;
            done += n;
        }
        Ok(())
    }

    /// `prefix.weight` `(out, in)` and `prefix.bias` `(out,)`, packed or quantized.
    pub(super) fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        self.fused_linear(&[prefix], d_in, d_out)
    }

    /// Linear layers of the same shape that read the same input, as one: their outputs one
    /// after another in each row (one pass over the input and one hand-off to the threads
    /// instead of one per layer).
    pub(super) fn fused_linear(
        &mut self,
        prefixes: &[&str],
        d_in: usize,
        d_out: usize,
    ) -> Result<Linear> {
        let mut b = Vec::with_capacity(prefixes.len() * d_out);
        for prefix in prefixes {
            b.extend(self.take_vec(&format!("{prefix}.bias"), &[d_out])?);
        }
        let weights = prefixes.iter().map(|p| format!("{p}.weight"));
        self.matrix(weights, prefixes.len() * d_out, d_in, Some(&b))
    }

    /// The matrices `names`, each `(n / names.len(), k)`, stacked into one layer of `n`
    /// outputs with `bias`: packed as f32, or quantized as read (`--quantize int8`).
    pub(super) fn matrix(
        &mut self,
        names: impl ExactSizeIterator<Item = String>,
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
    ) -> Result<Linear> {
        let rows = n / names.len().max(1);
        Ok(match self.quantize {
            Quantize::None => {
                let mut w = Vec::with_capacity(n * k);
                // Read straight into the one buffer (through `take_vec` each matrix was read
                // whole, then copied: the 233 MB output layer twice over for a moment).
                for name in names {
                    self.take_rows(&name, &[rows, k], |v| {
                        w.extend_from_slice(v);
                        Ok(())
                    })?;
                }
                Linear::F32(PackedLinear::from_rows(w, n, k, bias)?)
            }
            Quantize::Int8 => {
                let mut q = Int8Builder::new(n, k);
                for name in names {
                    self.take_rows(&name, &[rows, k], |v| Ok(q.push(v)?))?;
                }
                Linear::Int8(q.finish(bias)?)
            }
        })
    }

    pub(super) fn layer_norm(&mut self, prefix: &str, d: usize) -> Result<Norm> {
        Ok(Norm {
            weight: self.take_vec(&format!("{prefix}.weight"), &[d])?,
            bias: self.take_vec(&format!("{prefix}.bias"), &[d])?,
            eps: 1e-5,
        })
    }
}

/// Whether the network reads the tensor `name` of a file holding `all`. Skipped: the tied
/// copies of the embedding table (`lm_head`, the decoder's `embed_tokens`, and the encoder's
/// beside `model.shared`), which the output layer's weight stands for, and the position
/// tables, which are computed. On tc-big each copy is 233 MB as f32.
fn used(name: &str, all: &[&str]) -> bool {
    match name {
        "lm_head.weight" | "model.decoder.embed_tokens.weight" => false,
        "model.encoder.embed_tokens.weight" => !all.contains(&"model.shared.weight"),
        n => !n.contains("embed_positions"),
    }
}

/// Indexes the weights in `dir`: `model.safetensors` (read tensor by tensor as the layers are
/// built), else `pytorch_model.bin` (either of PyTorch's formats, read whole). f16 and bf16
/// weights (tc-big's `model.safetensors` is f16) are widened to f32 as they are read, exactly:
/// as f32, tc-big holds 0.94 GB of weights where its file is 0.47 GB; as int8, 0.24 GB.
pub(super) fn read(dir: &Path, quantize: Quantize) -> Result<Tensors> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.exists() {
        let (file, map) = index_safetensors(&safetensors)?;
        return Ok(Tensors {
            map,
            file: Some((file, safetensors)),
            quantize,
        });
    }
    let bin = dir.join("pytorch_model.bin");
    if !bin.exists() {
        return Err(Error::InvalidModel {
            path: safetensors,
            message: "missing (and no pytorch_model.bin either): the model's weights are not there"
                .into(),
        });
    }
    Ok(Tensors {
        map: pth::read(&bin, used)?
            .into_iter()
            .map(|(name, v, dims)| (name, (Stored::Values(v), dims)))
            .collect(),
        file: None,
        quantize,
    })
}

/// Indexes a safetensors file: each used tensor's place, type and shape, checked against the
/// file's length, and none of its values read yet. (candle's mmapped loader copies every
/// tensor out of the mapping while the mapping stays resident, so the process peaked at twice
/// the weights, 1.89 GB for tc-big as f32; read tensor by tensor as the layers take them, the
/// process holds the layers built so far plus one tensor.)
fn index_safetensors(path: &Path) -> Result<(std::fs::File, Index)> {
    let err = |source: std::io::Error| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |message: String| Error::InvalidModel {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let file_len = file.metadata().map_err(err)?.len();
    let mut len = [0u8; 8];
    file.read_exact_at(&mut len, 0).map_err(err)?;
    let header_len = u64::from_le_bytes(len);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(invalid("not a safetensors file (bad header length)".into()));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact_at(&mut header, 8).map_err(err)?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let infos = meta.tensors();
    let names: Vec<&str> = infos.keys().map(String::as_str).collect();
    let mut tensors = std::collections::HashMap::new();
    for (name, info) in &infos {
        if !used(name, &names) {
            continue;
        }
        let (start, end) = info.data_offsets;
        if data_start + end as u64 > file_len {
            return Err(invalid(format!(
                "tensor {name} lies past the end of the file: the download is incomplete; delete it and fetch it again"
            )));
        }
        let dtype = match info.dtype {
            safetensors::Dtype::F32 => pth::Dtype::F32,
            safetensors::Dtype::F16 => pth::Dtype::F16,
            safetensors::Dtype::BF16 => pth::Dtype::BF16,
            safetensors::Dtype::F64 => pth::Dtype::F64,
            d => {
                return Err(invalid(format!(
                    "tensor {name} is {d:?}; Marian weights must be f32, f16, bf16 or f64"
                )))
            }
        };
        let n: usize = info.shape.iter().product();
        if end - start != n * dtype.size() {
            return Err(invalid(format!(
                "tensor {name} holds {} values, its shape {:?} needs {n}",
                (end - start) / dtype.size(),
                info.shape
            )));
        }
        let stored = Stored::InFile {
            offset: data_start + start as u64,
            dtype,
        };
        tensors.insert(name.clone(), (stored, info.shape.clone()));
    }
    Ok((file, tensors))
}
