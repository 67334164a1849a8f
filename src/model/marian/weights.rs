//! A Marian model's weights: read from `model.safetensors` or `pytorch_model.bin` into f32
//! buffers (whatever their stored type), and taken out one by one as the layers are built
//! and packed.

use super::{pth, Norm};
use crate::error::{Error, Result};
use std::path::Path;
use tercuman_kernels::packed::PackedLinear;

/// Tensors by name: values (f32, row-major) and shape.
type TensorMap = std::collections::HashMap<String, (Vec<f32>, Vec<usize>)>;

/// The model's tensors by name, each taken out as the layer that uses it is built, so that a
/// weight matrix's original is freed as soon as its packed copy exists (peak: the weights
/// plus the largest matrix, the output layer's, or q/k/v's three fused).
pub(super) struct Tensors(pub(super) TensorMap);

impl Tensors {
    pub(super) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub(super) fn take_vec(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (v, dims) = self
            .0
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

    /// `prefix.weight` `(out, in)` and `prefix.bias` `(out,)`, packed.
    pub(super) fn linear(
        &mut self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<PackedLinear> {
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
    ) -> Result<PackedLinear> {
        let mut w = Vec::with_capacity(prefixes.len() * d_out * d_in);
        let mut b = Vec::with_capacity(prefixes.len() * d_out);
        for prefix in prefixes {
            w.extend(self.take_vec(&format!("{prefix}.weight"), &[d_out, d_in])?);
            b.extend(self.take_vec(&format!("{prefix}.bias"), &[d_out])?);
        }
        Ok(PackedLinear::from_rows(
            w,
            prefixes.len() * d_out,
            d_in,
            Some(&b),
        )?)
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

/// Reads the weights in `dir`: `model.safetensors`, else `pytorch_model.bin` (either of
/// PyTorch's formats). f16 and bf16 weights (tc-big's `model.safetensors` is f16) are widened
/// to f32 as they are read, exactly, and the network runs in f32: tc-big then holds 0.94 GB
/// of weights where its file is 0.47 GB.
pub(super) fn read(dir: &Path) -> Result<Tensors> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.exists() {
        return Ok(Tensors(read_safetensors(&safetensors)?));
    }
    let bin = dir.join("pytorch_model.bin");
    if !bin.exists() {
        return Err(Error::InvalidModel {
            path: safetensors,
            message: "missing (and no pytorch_model.bin either): the model's weights are not there"
                .into(),
        });
    }
    Ok(Tensors(
        pth::read(&bin, used)?
            .into_iter()
            .map(|(name, v, dims)| (name, (v, dims)))
            .collect(),
    ))
}

/// Reads a safetensors file tensor by tensor straight into f32 buffers. candle's mmapped
/// loader copies every tensor out of the mapping while the mapping stays resident, so the
/// process peaks at twice the weights (1.89 GB for tc-big as f32); read this way it peaks
/// at the weights plus one tensor.
fn read_safetensors(path: &Path) -> Result<TensorMap> {
    use std::os::unix::fs::FileExt;
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
        let offset = data_start + start as u64;
        let bytes = end - start;
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
        let tensor = if dtype == pth::Dtype::F32 && cfg!(target_endian = "little") {
            let mut data = vec![0f32; bytes / 4];
            file.read_exact_at(bytemuck::cast_slice_mut(&mut data), offset)
                .map_err(err)?;
            data
        } else {
            let mut data = vec![0u8; bytes];
            file.read_exact_at(&mut data, offset).map_err(err)?;
            pth::to_f32(&data, dtype).expect("a floating-point type")
        };
        let n: usize = info.shape.iter().product();
        if tensor.len() != n {
            return Err(invalid(format!(
                "tensor {name} holds {} values, its shape {:?} needs {n}",
                tensor.len(),
                info.shape
            )));
        }
        tensors.insert(name.clone(), (tensor, info.shape.clone()));
    }
    Ok(tensors)
}
