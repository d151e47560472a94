#!/usr/bin/env bash
# `make demo`: installs what is missing, builds the tool, runs the demo preset (two simulated
# devices, a working set ~3x the page limit, a purgeable share, Zipf reuse) and writes the report,
# trace and plot under build/demo/. Extra arguments go to `uttm run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target uttm_cli -j2
uttm=build/release/tools/uttm/uttm
out=build/demo
mkdir -p "$out"
status=0
"$uttm" run --preset demo --report "$out/report.json" --trace "$out/trace.json" \
  --plot "$out/plot.svg" "$@" || status=$?
echo
if [ "$status" -eq 0 ]; then
  echo "uttm demo: every retained buffer verified byte for byte."
else
  echo "uttm demo: the run FAILED (exit $status); see the errors above and $out/report.json."
fi
echo "  report: $out/report.json"
echo "  trace:  $out/trace.json (open in https://ui.perfetto.dev)"
echo "  plot:   $out/plot.svg (open in a browser)"
exit "$status"
