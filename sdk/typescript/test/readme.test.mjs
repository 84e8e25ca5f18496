// The README's examples, as written: each ```ts block becomes a module next
// to a node_modules/warden-sdk that is this package (as after `npm
// install`), is type-checked by tsc against the SDK's declarations, and
// runs against the server the suite was given.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const blocks = [...readFileSync(join(pkg, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has examples", () => assert.ok(blocks.length >= 4));

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-readme-"));
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(pkg, join(dir, "node_modules", "warden-sdk"));
    // Type-checked against the SDK's own declarations, then run.
    writeFileSync(join(dir, "package.json"), '{"type": "module"}');
    writeFileSync(join(dir, "example.ts"), code);
    const tsc = join(pkg, "node_modules", "typescript", "bin", "tsc");
    execFileSync(process.execPath, [tsc, "--module", "nodenext", "--moduleResolution", "nodenext",
      "--target", "es2022", "--strict", "--skipLibCheck", "--typeRoots", join(pkg, "node_modules", "@types"),
      "--types", "node", join(dir, "example.ts")], { stdio: "inherit" });
    execFileSync(process.execPath, [join(dir, "example.js")], { stdio: ["ignore", "pipe", "inherit"], timeout: 300_000 });
  });
});
