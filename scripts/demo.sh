#!/usr/bin/env bash
# Placeholder demo until review jobs land: one Python one-liner, run through
# `warden run` over the bundled sample CSV, its /output exported to out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/out/demo"
rm -rf "$out"
./target/release/warden run --input examples/sample --output "$out" --timeout 60s -- \
  python3 -c '
import csv, collections
rows = list(csv.DictReader(open("/input/sales.csv")))
by = collections.defaultdict(float)
for r in rows: by[r["region"]] += float(r["revenue"])
lines = ["# Revenue by region", ""] + [f"- {k}: {v:.2f}" for k, v in sorted(by.items())]
open("/output/summary.md", "w").write("\n".join(lines) + "\n")
print(f"read {len(rows)} rows from /input/sales.csv; wrote /output/summary.md")
'
echo "demo results: $out/summary.md"
cat "$out/summary.md"
