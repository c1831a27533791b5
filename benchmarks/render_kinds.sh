#!/usr/bin/env bash
# Renders the README's picture of each crop kind with `cropsearch preview` (no training).
# Usage: bash benchmarks/render_kinds.sh   (from the project root, with the venv installed)
set -euo pipefail
cd "$(dirname "$0")/.."
data="shapes:train=8,val=8,test=8"
render() {  # name, then --set arguments
  local name=$1; shift
  .venv/bin/cropsearch preview --data "$data" --n 4 -o "benchmarks/kinds/$name.png" "$@"
}
render full --set kind=full
render center --set kind=center --set fraction=0.6
render random --set kind=random --set fraction=0.6
render random_resized --set kind=random_resized --set fraction=0.3
render object --set kind=object --set context=0.3 --set jitter=0.1
render object_random --set kind=object_random --set fraction=0.3 --set context=0.3
render object_pad_letterbox --set kind=object --set context=0.5 --set aspect_ratio=2 \
  --set border=pad --set fit=letterbox
