#!/usr/bin/env python3
"""Splits a GGUF model into parts the way llama.cpp's `gguf-split` does, with gguf-py's writer.

The first part holds every metadata key of the input; each part holds `split.no` (u16, from 0),
`split.count` (u16) and `split.tensors.count` (i32) and its share of the tensors, byte for byte.
Parts are named NAME-00001-of-0000N.gguf beside OUT_PREFIX.

Makes the split test fixture (tests/fixtures/tiny-qwen2-split/) from the tiny Qwen2 model:

    python3 scripts/make_split_gguf.py tests/fixtures/tiny-qwen2/tiny-qwen2.gguf \\
        tests/fixtures/tiny-qwen2-split/tiny-qwen2 --parts 2

Needs `pip install gguf` (0.19). The output depends only on the input: a rerun rewrites the
parts byte for byte.
"""
import argparse
import math
import pathlib

import gguf


def copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        # The header counts and the architecture are written by GGUFWriter itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", type=pathlib.Path)
    ap.add_argument("out_prefix", type=pathlib.Path, help="parts are OUT_PREFIX-0000K-of-0000N.gguf")
    ap.add_argument("--parts", type=int, default=2)
    args = ap.parse_args()

    reader = gguf.GGUFReader(args.input)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    per_part = math.ceil(len(reader.tensors) / args.parts)
    args.out_prefix.parent.mkdir(parents=True, exist_ok=True)
    # GGUFWriter names the parts from the stem of this path.
    writer = gguf.GGUFWriter(args.out_prefix.with_suffix(".gguf"), arch, split_max_tensors=per_part)
    copy_metadata(reader, writer)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    for path in writer.format_shard_names(args.out_prefix.with_suffix(".gguf")):
        print(path)


if __name__ == "__main__":
    main()
