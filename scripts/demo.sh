#!/usr/bin/env bash
# `make demo`: runs the demo preset with report, trace and plot written under build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
uttm=build/release/tools/uttm/uttm
out=build/demo
mkdir -p "$out"
"$uttm" run --preset demo --report "$out/report.json" --trace "$out/trace.json" \
  --plot "$out/plot.svg" "$@"
echo "uttm demo: report $out/report.json, trace $out/trace.json (open in ui.perfetto.dev), plot $out/plot.svg"
