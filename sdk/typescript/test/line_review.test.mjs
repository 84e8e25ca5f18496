// The line-review example (examples/line-review.ts), type-checked against
// the SDK and run end to end on a generated sample set: the review on the
// python-data image finds every planted inconsistency.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const repo = join(pkg, "..", "..");

test("the line-review twin finds the planted inconsistencies", () => {
  const images = process.env.WARDEN_IMAGES_DIR ?? "/var/cache/warden/images";
  assert.ok(existsSync(join(images, "python-data/.warden-image.json")), "the python-data image is missing: make image");
  const dir = mkdtempSync(join(tmpdir(), "warden-line-review-"));
  execFileSync("/usr/bin/python3", [join(repo, "examples/sample/generate.py"), join(dir, "set"), "--expected", join(dir, "expected.json")], { stdio: "inherit" });
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(pkg, join(dir, "node_modules", "warden-sdk"));
  writeFileSync(join(dir, "package.json"), '{"type": "module"}');
  copyFileSync(join(pkg, "examples/line-review.ts"), join(dir, "line-review.ts"));
  const tsc = join(pkg, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
    "--strict", "--skipLibCheck", "--typeRoots", join(pkg, "node_modules", "@types"), "--types", "node",
    join(dir, "line-review.ts")], { stdio: "inherit" });
  const out = execFileSync(process.execPath, [join(dir, "line-review.js"), join(dir, "set"), join(repo, "examples/line-review"),
    join(dir, "out"), join(dir, "expected.json")], { encoding: "utf8", timeout: 600_000 });
  assert.match(out, /planted: (\d+), found: \1,/);
  assert.ok(existsSync(join(dir, "out", "report.html")));
  const manifest = JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8"));
  assert.deepEqual([manifest.exit.status, manifest.exit.exit_code], ["succeeded", 0]);
  assert.equal(manifest.inputs.length, 15, "12 sample files and the agent's 3");
});
