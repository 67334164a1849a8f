#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs the real test model if needed and runs
# every test, the ones on the real Gemma 3 270M model included.
set -euo pipefail
cd "$(dirname "$0")/.."
TERCUMAN_TEST_GGUF=$(bash scripts/test-model.sh)
export TERCUMAN_TEST_GGUF
cargo test --workspace --locked "$@"
