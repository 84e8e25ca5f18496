#!/usr/bin/env bash
# `make demo`: the line-review workflow end to end, on the embedded defaults.
#
#   1. generate the 12-file sample set (deterministic; skipped when present)
#   2. start `warden serve` (127.0.0.1:7300, ./warden-data)
#   3. create a tenant and an API key
#   4. upload the 12 files and the agent (progress bars)
#   5. submit a review job (image python-data), follow its log to the end
#   6. download the outputs, check the planted inconsistencies were found
#
# Prints where the report is and how long each phase took. `make demo` has
# already installed packages, built warden and the python-data image.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
warden="$root/target/release/warden"
py=/usr/bin/python3
out="$root/out/demo"
sample="$out/sample"
mkdir -p "$out"

declare -a phases=()
t_phase=$(date +%s.%N)
phase() { # name: records the time since the previous phase ended
  local now; now=$(date +%s.%N)
  phases+=("$(awk -v a="$t_phase" -v b="$now" -v n="$1" 'BEGIN { printf "  %-34s %6.2f s", n, b - a }')")
  t_phase=$now
}
say() { printf '\n== %s\n' "$*"; }

say "sample data"
# Reuse the set generated earlier when every file still matches the key.
if [ -f "$out/expected.json" ] && "$py" - "$out/expected.json" "$sample" <<'EOF'
import hashlib, json, os, sys
files = json.load(open(sys.argv[1]))["files"]
items = files.items() if isinstance(files, dict) else [(f["name"], f) for f in files]
for name, meta in items:
    p = os.path.join(sys.argv[2], name)
    if not os.path.isfile(p) or hashlib.sha256(open(p, "rb").read()).hexdigest() != meta["sha256"]:
        sys.exit(1)
EOF
then
  echo "using the set generated earlier in $sample"
else
  rm -rf "$sample"
  "$py" examples/sample/generate.py "$sample" --expected "$out/expected.json"
fi
phase "generate sample data"

say "starting warden serve"
export WARDEN_URL=http://127.0.0.1:7300
export WARDEN_ADMIN_TOKEN="${WARDEN_ADMIN_TOKEN:-demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
if curl -fsS "$WARDEN_URL/healthz" >/dev/null 2>&1; then
  echo "warden: something already listens on 127.0.0.1:7300; stop it first" >&2
  exit 1
fi
"$warden" serve >"$out/server.log" 2>&1 &
server=$!
cleanup() { kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "$WARDEN_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "listening on $WARDEN_URL (data in $root/warden-data, log in $out/server.log)"
phase "start the server"

say "tenant and key"
tenant=$("$warden" tenant create "demo-$(date +%H%M%S)" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
export WARDEN_API_KEY
WARDEN_API_KEY=$("$warden" key create --tenant "$tenant" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
echo "tenant $tenant"
phase "create tenant and key"

say "uploading the sample set and the agent"
files=()
for f in "$sample"/* examples/line-review/agent.py examples/line-review/readers.py examples/line-review/report.py; do
  id=$("$warden" file upload "$f" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  printf '  %-34s %s\n' "$(basename "$f")" "$id"
  files+=(--file "$id")
done
phase "upload 12 files + agent"

say "review job (python-data image): following its log"
job=$("$warden" review submit "${files[@]}" --image python-data --memory 1G --cpus 1 \
      --pids 128 --disk 64M --timeout 5m --json -- python3 /input/agent.py \
      | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "job $job"
t_review=$(date +%s.%N)
"$warden" review logs "$job" --follow || true
status=$("$warden" review status "$job" --json)
state=$(echo "$status" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
phase "review job (submit -> finished)"
if [ "$state" != succeeded ]; then
  echo "the review job ended $state:" >&2
  echo "$status" >&2
  exit 1
fi

say "outputs"
rm -rf "$out/review"
"$warden" review outputs "$job" --download "$out/review"
phase "download outputs"

say "checking the findings against the planted inconsistencies"
"$py" - "$out/expected.json" "$out/review/findings.json" <<'EOF'
import json, sys
expected = {f["id"] for f in json.load(open(sys.argv[1]))["findings"]}
found = {f["id"] for f in json.load(open(sys.argv[2]))["findings"]}
missing = sorted(expected - found)
print(f"planted: {len(expected)}, found: {len(expected & found)}, other findings: {len(found - expected)}")
if missing:
    sys.exit("missing: " + ", ".join(missing))
EOF

review_secs=$(awk -v a="$t_review" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
say "done"
printf '%s\n' "${phases[@]}"
echo
echo "review phase: ${review_secs} s"
echo "report:   $out/review/report.html"
echo "summary:  $out/review/summary.md"
echo "findings: $out/review/findings.json"
echo "manifest: $out/review/manifest.json (sha256 of every input and output)"
