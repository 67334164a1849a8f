//! `pytorch_model.bin` in both formats `torch.save` has written: the zip archive of PyTorch
//! 1.6 and later (read through candle), and the legacy format before it, which candle cannot
//! read and which the 2020 OPUS-MT repositories still ship (Helsinki-NLP/opus-mt-tr-en).
//!
//! The legacy format is five things one after another: a pickle of a magic number, one of the
//! format version (1001), one of the writer's byte order and type sizes, the main pickle (the
//! state dict, each tensor's storage named by a persistent id), a pickle of the list of storage
//! keys, and then each storage in that order as an 8-byte element count and its raw bytes.
//! The pickles are read with candle's unpickler (`candle_core::pickle::Stack`), which stops at
//! each pickle's end; only the magic number is matched as bytes, because candle's reading of
//! that 10-byte integer overflows.
//!
//! Every tensor comes out as f32 (f16, bf16 and f64 storages are converted), and only the
//! tensors `keep` asks for are made, so that tied copies of a large matrix cost nothing.

use crate::error::{Error, Result};
use candle_core::pickle::{Object, Stack};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// A tensor as f32 values (row-major) and its shape.
pub(super) type Loaded = (String, Vec<f32>, Vec<usize>);

/// What the first bytes of a `pytorch_model.bin` say it is.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Zip,
    Legacy,
    GitLfsPointer,
    Unknown,
}

/// The legacy format's first pickle: protocol 2, `LONG1` of 10 bytes holding
/// 0x1950a86a20f9469cfc6c (little-endian), `STOP`.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
];

fn format_of(head: &[u8]) -> Format {
    if head.starts_with(b"PK\x03\x04") {
        Format::Zip
    } else if head.starts_with(&LEGACY_MAGIC) {
        Format::Legacy
    } else if head.starts_with(b"version https://git-lfs") {
        Format::GitLfsPointer
    } else {
        Format::Unknown
    }
}

/// Reads the tensors of `path` for which `keep(name, all names)` holds.
pub(super) fn read(path: &Path, keep: impl Fn(&str, &[&str]) -> bool) -> Result<Vec<Loaded>> {
    let io = |source| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(32);
    std::fs::File::open(path)
        .map_err(io)?
        .take(32)
        .read_to_end(&mut head)
        .map_err(io)?;
    let unreadable = |what: String| {
        Error::InvalidModel {
        path: path.to_path_buf(),
        message: format!(
            "{what}; delete it and fetch it again, or convert it to model.safetensors (in Python: `safetensors.torch.save_file(torch.load(PATH), \"model.safetensors\")`) and put that beside it"
        ),
    }
    };
    match format_of(&head) {
        Format::Zip => read_zip(path, keep)
            .map_err(|e| unreadable(format!("not a PyTorch checkpoint candle can read ({e})"))),
        Format::Legacy => read_legacy(path, keep)
            .map_err(|e| unreadable(format!("cannot read this legacy PyTorch file: {e}"))),
        Format::GitLfsPointer => Err(unreadable(
            "is a Git LFS pointer, not the weights (the repository was cloned without git-lfs)"
                .into(),
        )),
        Format::Unknown => Err(unreadable(
            "is neither PyTorch's zip format nor its legacy pickle format".into(),
        )),
    }
}

fn read_zip(path: &Path, keep: impl Fn(&str, &[&str]) -> bool) -> candle_core::Result<Vec<Loaded>> {
    let pth = candle_core::pickle::PthTensors::new(path, None)?;
    let names: Vec<&str> = pth.tensor_infos().keys().map(String::as_str).collect();
    let mut out = Vec::new();
    for &name in names.iter().filter(|n| keep(n, &names)) {
        if let Some(t) = pth.get(name)? {
            let dims = t.dims().to_vec();
            let v = t
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            out.push((name.to_string(), v, dims));
        }
    }
    Ok(out)
}

/// A storage's element type, by its class name in the pickle (`torch.FloatStorage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dtype {
    F32,
    F16,
    BF16,
    F64,
    /// Integer or boolean storages: skipped, never converted.
    Other(usize),
}

impl Dtype {
    fn from_class(class: &str) -> Option<Dtype> {
        Some(match class {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "DoubleStorage" => Dtype::F64,
            "LongStorage" => Dtype::Other(8),
            "IntStorage" => Dtype::Other(4),
            "ShortStorage" => Dtype::Other(2),
            "CharStorage" | "ByteStorage" | "BoolStorage" => Dtype::Other(1),
            _ => return None,
        })
    }

    pub(super) fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::F64 => 8,
            Dtype::Other(n) => n,
        }
    }
}

/// Little-endian `bytes` of `dtype` as f32 (exact for f16 and bf16), `None` for a type that
/// is not floating point.
pub(super) fn to_f32(bytes: &[u8], dtype: Dtype) -> Option<Vec<f32>> {
    let mut out = Vec::new();
    to_f32_into(bytes, dtype, &mut out).then_some(out)
}

/// [`to_f32`] into `out` (its values replaced, its allocation kept): false for a type that
/// is not floating point.
pub(super) fn to_f32_into(bytes: &[u8], dtype: Dtype, out: &mut Vec<f32>) -> bool {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    out.clear();
    match dtype {
        Dtype::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ),
        Dtype::F64 => out.extend(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
        ),
        Dtype::F16 | Dtype::BF16 => {
            let bits: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            out.resize(bits.len(), 0.0);
            if dtype == Dtype::F16 {
                bits.reinterpret_cast::<half::f16>()
                    .convert_to_f32_slice(out);
            } else {
                bits.reinterpret_cast::<half::bf16>()
                    .convert_to_f32_slice(out);
            }
        }
        Dtype::Other(_) => return false,
    }
    true
}

/// One tensor of the main pickle: where its values lie in which storage.
#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    name: String,
    storage: String,
    /// In elements, from the storage's start (a storage view's own offset included).
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// What went wrong inside the file; [`read`] names the file and says what to do.
type Why<T> = std::result::Result<T, String>;

fn msg(m: impl Into<String>) -> String {
    m.into()
}

/// One pickle from `r`, up to its `STOP`.
fn unpickle(r: &mut impl BufRead, what: &str) -> Why<Object> {
    let mut stack = Stack::empty();
    stack
        .read_loop(r)
        .and_then(|()| stack.finalize())
        .map_err(|e| msg(format!("{what}: {e}")))
}

fn read_legacy(path: &Path, keep: impl Fn(&str, &[&str]) -> bool) -> Why<Vec<Loaded>> {
    let io = |e: std::io::Error| e.to_string();
    let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
    let mut magic = [0u8; LEGACY_MAGIC.len()];
    r.read_exact(&mut magic).map_err(io)?;
    match unpickle(&mut r, "format version")? {
        Object::Int(1001) => {}
        v => return Err(msg(format!("format version {v:?}, not 1001"))),
    }
    let sys_info = unpickle(&mut r, "system info")?;
    if !matches!(&sys_info, Object::Dict(kv) if kv.contains(&(Object::Unicode("little_endian".into()), Object::Bool(true))))
    {
        return Err(msg("written on a big-endian machine"));
    }
    let (tensors, dtypes) = state_dict(unpickle(&mut r, "state dict")?)?;
    let keys = match unpickle(&mut r, "storage keys")? {
        Object::List(keys) => keys
            .into_iter()
            .map(|k| String::try_from(k).map_err(|k| msg(format!("storage key {k:?}"))))
            .collect::<Why<Vec<_>>>()?,
        k => return Err(msg(format!("storage keys: {k:?}"))),
    };
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let mut by_storage: HashMap<&str, Vec<&TensorRef>> = HashMap::new();
    for t in tensors.iter().filter(|t| keep(&t.name, &names)) {
        by_storage.entry(&t.storage).or_default().push(t);
    }
    let mut out = Vec::new();
    for key in &keys {
        let dtype = *dtypes
            .get(key)
            .ok_or_else(|| msg(format!("storage {key} is used by no tensor")))?;
        let mut count = [0u8; 8];
        r.read_exact(&mut count).map_err(truncated)?;
        let bytes = u64::from_le_bytes(count)
            .checked_mul(dtype.size() as u64)
            .ok_or_else(|| msg(format!("storage {key}: bad length")))?;
        let Some(users) = by_storage.get(key.as_str()) else {
            std::io::copy(&mut (&mut r).take(bytes), &mut std::io::sink()).map_err(io)?;
            continue;
        };
        let mut raw = vec![0u8; bytes as usize];
        r.read_exact(&mut raw).map_err(truncated)?;
        let values = to_f32(&raw, dtype).ok_or_else(|| {
            msg(format!(
                "{} is not floating point ({dtype:?})",
                users[0].name
            ))
        })?;
        drop(raw);
        for t in users {
            out.push((t.name.clone(), gather(&values, t)?, t.shape.clone()));
        }
    }
    if let Some(t) = tensors
        .iter()
        .find(|t| by_storage.contains_key(t.storage.as_str()) && !keys.contains(&t.storage))
    {
        return Err(msg(format!("the data of {} is missing", t.name)));
    }
    Ok(out)
}

fn truncated(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        msg("the file ends before its last tensor: the download is incomplete")
    } else {
        msg(e.to_string())
    }
}

/// The values of `t` out of its storage, row-major, whatever its strides.
fn gather(storage: &[f32], t: &TensorRef) -> Why<Vec<f32>> {
    let n: usize = t.shape.iter().product();
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .map(|(d, s)| d.saturating_sub(1) * s)
        .sum::<usize>();
    if n > 0 && t.offset + last >= storage.len() {
        return Err(msg(format!(
            "{} lies past the end of its storage ({} values)",
            t.name,
            storage.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..n {
        let at: usize = index.iter().zip(&t.stride).map(|(i, s)| i * s).sum();
        out.push(storage[t.offset + at]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

/// The tensors of a state dict, and each storage's element type.
fn state_dict(obj: Object) -> Why<(Vec<TensorRef>, HashMap<String, Dtype>)> {
    let Object::Dict(entries) = obj else {
        return Err(msg("the main pickle is not a state dict"));
    };
    let mut tensors = Vec::new();
    let mut dtypes = HashMap::new();
    for (name, value) in entries {
        // Entries built some other way are not tensors: the `_metadata` attribute of the
        // OrderedDict (candle's unpickler merges it into the dict).
        let (Ok(name), Object::Reduce { .. }) = (String::try_from(name), &value) else {
            continue;
        };
        let (t, dtype) = tensor_ref(name, value)?;
        dtypes.insert(t.storage.clone(), dtype);
        tensors.push(t);
    }
    Ok((tensors, dtypes))
}

/// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, possibly wrapped in
/// `_rebuild_parameter(tensor, requires_grad, hooks)`.
fn tensor_ref(name: String, value: Object) -> Why<(TensorRef, Dtype)> {
    let bad = |what: &str| msg(format!("{name}: {what}"));
    let (callable, args) = value
        .reduce()
        .map_err(|_| bad("not a tensor"))
        .and_then(|(c, a)| Ok((c.class().map_err(|_| bad("not a tensor"))?, a)))?;
    let args = args.tuple().map_err(|_| bad("bad arguments"))?;
    match (callable.0.as_str(), callable.1.as_str()) {
        ("torch._utils", "_rebuild_parameter") => {
            let inner = args
                .into_iter()
                .next()
                .ok_or_else(|| bad("empty parameter"))?;
            return tensor_ref(name, inner);
        }
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") if args.len() >= 4 => {}
        (m, c) => return Err(bad(&format!("built by {m}.{c}, not a plain tensor"))),
    }
    let mut args = args.into_iter();
    let storage = args.next().expect("4 arguments");
    let offset = args.next().expect("4 arguments");
    let dims = |o: Object| -> Option<Vec<usize>> {
        o.tuple()
            .ok()?
            .into_iter()
            .map(|d| d.int_or_long().ok().and_then(|d| usize::try_from(d).ok()))
            .collect()
    };
    let shape = args.next().and_then(dims).ok_or_else(|| bad("bad shape"))?;
    let stride = args
        .next()
        .and_then(dims)
        .ok_or_else(|| bad("bad strides"))?;
    let offset = offset
        .int_or_long()
        .ok()
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| bad("bad offset"))?;
    let (key, dtype, view_offset) = storage_id(storage).map_err(|e| bad(&e))?;
    if shape.len() != stride.len() {
        return Err(bad("shape and strides differ in length"));
    }
    Ok((
        TensorRef {
            name,
            storage: key,
            offset: offset + view_offset,
            shape,
            stride,
        },
        dtype,
    ))
}

/// A persistent id `('storage', torch.FloatStorage, key, location, size, view)`: the key
/// of the storage whose bytes follow the pickle, its type, and, for a view (`(view key,
/// offset, size)`, written by PyTorch < 1.6 for a slice of a storage), the view's offset.
fn storage_id(storage: Object) -> Why<(String, Dtype, usize)> {
    let id = storage
        .persistent_load()
        .and_then(Object::tuple)
        .map_err(|o| format!("storage {o:?}"))?;
    let mut id = id.into_iter();
    let (Some(kind), Some(class), Some(key)) = (id.next(), id.next(), id.next()) else {
        return Err("short storage id".into());
    };
    if kind != Object::Unicode("storage".into()) {
        return Err(format!("persistent id {kind:?}"));
    }
    let (_, class) = class.class().map_err(|o| format!("storage type {o:?}"))?;
    let dtype = Dtype::from_class(&class).ok_or_else(|| format!("storage type {class}"))?;
    let key = String::try_from(key).map_err(|o| format!("storage key {o:?}"))?;
    let view_offset = match id.nth(2) {
        None | Some(Object::None) => 0,
        Some(Object::Tuple(view)) => view
            .into_iter()
            .nth(1)
            .and_then(|o| o.int_or_long().ok())
            .and_then(|o| usize::try_from(o).ok())
            .ok_or("bad storage view")?,
        Some(o) => return Err(format!("storage view {o:?}")),
    };
    Ok((key, dtype, view_offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn all(path: &Path) -> BTreeMap<String, (Vec<f32>, Vec<usize>)> {
        read(path, |_, _| true)
            .unwrap()
            .into_iter()
            .map(|(n, v, s)| (n, (v, s)))
            .collect()
    }

    #[test]
    fn a_legacy_file_holds_the_same_tensors_as_its_zip_twin() {
        let legacy = all(&fixture("tiny-marian-pth/legacy/pytorch_model.bin"));
        let zip = all(&fixture("tiny-marian-pth/pytorch_model.bin"));
        // Every name of the state dict, the tied copies of the embedding table included.
        assert_eq!(legacy.len(), 91);
        assert!(legacy.contains_key("model.decoder.embed_tokens.weight"));
        assert!(legacy == zip, "the two files differ");
    }

    #[test]
    fn legacy_tensors_of_every_float_type_views_and_slices_read_as_torch_wrote_them() {
        let path = fixture("pth-legacy-dtypes.bin");
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap())
                .unwrap();
        let got = read(&path, |n, _| n != "long").unwrap();
        let names: Vec<&str> = got.iter().map(|t| t.0.as_str()).collect();
        let want = want["tensors"].as_object().unwrap();
        assert_eq!(got.len(), want.len(), "{names:?}");
        for (name, values, shape) in &got {
            let w = &want[name];
            let w_shape: Vec<usize> = serde_json::from_value(w["shape"].clone()).unwrap();
            let w_values: Vec<f32> = serde_json::from_value(w["values"].clone()).unwrap();
            assert_eq!((shape, values), (&w_shape, &w_values), "{name}");
        }
        // The f16 and bf16 copies are the f32 values rounded, not the same bits.
        let value = |n: &str| &got.iter().find(|t| t.0 == n).unwrap().1;
        assert_ne!(value("f16"), value("f32"));
        assert_ne!(value("bf16"), value("f16"));
        let err = read(&path, |_, _| true).unwrap_err().to_string();
        assert!(err.contains("long is not floating point"), "{err}");
        assert!(err.contains("pth-legacy-dtypes.bin"), "{err}");
    }

    #[test]
    fn a_cut_or_foreign_file_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fixture("tiny-marian-pth/legacy/pytorch_model.bin")).unwrap();
        let cut = dir.path().join("pytorch_model.bin");
        std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
        let err = read(&cut, |_, _| true).unwrap_err().to_string();
        assert!(err.contains("the download is incomplete"), "{err}");
        assert!(err.contains("delete it and fetch it again"), "{err}");
        std::fs::write(
            &cut,
            b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n",
        )
        .unwrap();
        let err = read(&cut, |_, _| true).unwrap_err().to_string();
        assert!(err.contains("Git LFS pointer"), "{err}");
        std::fs::write(&cut, b"\x80\x04\x95 a protocol-4 pickle").unwrap();
        let err = read(&cut, |_, _| true).unwrap_err().to_string();
        assert!(
            err.contains("pytorch_model.bin: is neither PyTorch's zip format nor its legacy"),
            "{err}"
        );
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn formats_are_told_apart_by_their_first_bytes() {
        assert_eq!(format_of(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(format_of(&LEGACY_MAGIC), Format::Legacy);
        assert_eq!(
            format_of(b"version https://git-lfs.github.com/spec/v1\n"),
            Format::GitLfsPointer
        );
        assert_eq!(format_of(&LEGACY_MAGIC[..14]), Format::Unknown);
        assert_eq!(format_of(b"{\"json\": 1}"), Format::Unknown);
    }

    #[test]
    fn half_floats_convert_exactly() {
        // 1.0, -2.5, 65504 (f16's largest) and the smallest f16 subnormal.
        let f16: Vec<u8> = [0x3c00u16, 0xc100, 0x7bff, 0x0001]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        assert_eq!(
            to_f32(&f16, Dtype::F16).unwrap(),
            [1.0, -2.5, 65504.0, 2f32.powi(-24)]
        );
        // bf16 is f32's top half.
        let bf16: Vec<u8> = [0x3f80u16, 0xc020]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        assert_eq!(to_f32(&bf16, Dtype::BF16).unwrap(), [1.0, -2.5]);
        assert_eq!(to_f32(&[0; 8], Dtype::Other(8)), None);
    }

    #[test]
    fn strided_tensors_are_gathered_row_major() {
        let storage: Vec<f32> = (0..12).map(|v| v as f32).collect();
        // The transpose of the (3, 4) matrix starting at element 0, and a (2, 2) block at 5.
        let t = |offset, shape: [usize; 2], stride: [usize; 2]| TensorRef {
            name: "t".into(),
            storage: "0".into(),
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        };
        assert_eq!(
            gather(&storage, &t(0, [4, 3], [1, 4])).unwrap(),
            [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
        assert_eq!(
            gather(&storage, &t(5, [2, 2], [4, 1])).unwrap(),
            [5., 6., 9., 10.]
        );
        assert!(gather(&storage, &t(5, [2, 4], [4, 1])).is_err());
    }
}
