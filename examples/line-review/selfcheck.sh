#!/usr/bin/env bash
# Self-check of the line-review example, outside any sandbox:
#   1. generate the sample set twice and require byte-identical files (the
#      answer key carries every file's sha256, so comparing keys suffices);
#   2. add a corrupt workbook to the set, run the agent on it;
#   3. require findings.json to hold exactly the planted ids plus the corrupt
#      file's, each naming the planted files: nothing missed, no false alarms;
#   4. require the three outputs, with charts embedded in report.html.
# Uses Debian's python3 and its packages (see examples/line-review/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-/usr/bin/python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== generating the sample set (twice, to check it is reproducible)"
"$py" "$here/../sample/generate.py" "$tmp/set" --expected "$tmp/expected.json"
"$py" "$here/../sample/generate.py" "$tmp/again" --expected "$tmp/again.json" >/dev/null
cmp -s "$tmp/expected.json" "$tmp/again.json" || { echo "FAIL: two runs of generate.py differ" >&2; exit 1; }
rm -rf "$tmp/again"

echo "== running the agent"
printf 'this is not a workbook' >"$tmp/set/broken.xlsx"  # must be reported, not fatal
start=$(date +%s.%N)
"$py" "$here/agent.py" --input "$tmp/set" --output "$tmp/out"
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')

echo "== checking the findings"
"$py" - "$tmp/expected.json" "$tmp/out" "$elapsed" <<'EOF'
import json, os, sys
expected = json.load(open(sys.argv[1]))
out = sys.argv[2]
got = {f["id"]: f for f in json.load(open(os.path.join(out, "findings.json")))["findings"]}
want = {f["id"]: f for f in expected["findings"]}
want["unreadable-file/broken.xlsx"] = {"files": ["broken.xlsx"]}
problems = [f"missing: {i}" for i in want if i not in got]
problems += [f"unexpected (false alarm?): {i}: {got[i]['title']}" for i in got if i not in want]
problems += [f"{i}: files {got[i]['files']} do not include {w['files']}"
             for i, w in want.items() if i in got and not set(w["files"]) <= set(got[i]["files"])]
html = open(os.path.join(out, "report.html")).read()
if html.count("data:image/png;base64,") < 3:
    problems.append("report.html has fewer than 3 embedded charts")
if os.path.getsize(os.path.join(out, "summary.md")) < 200:
    problems.append("summary.md is (nearly) empty")
for p in problems:
    print("FAIL:", p)
for i in sorted(want):
    print(("ok   " if i in got else "MISS ") + i)
print(f"agent run: {float(sys.argv[3]):.1f} s")
sys.exit(1 if problems else 0)
EOF
echo "PASS: every planted finding found, no false alarms"
