// The tests run against a real `warden serve` started by
// crates/cli/tests/api/sdk_typescript.rs, which passes WARDEN_URL,
// WARDEN_API_KEY (a tenant whose command policy denies
// "*touch /scratch/forbidden*", secrets enabled, private webhooks allowed)
// and WARDEN_OTHER_TENANT_KEY.
import assert from "node:assert/strict";
import { Warden } from "../dist/index.js";

export function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run through cargo test -p warden-cli --test api sdk_typescript`);
  return v;
}

export const w = () => new Warden({ url: env("WARDEN_URL"), apiKey: env("WARDEN_API_KEY") });
export const other = () => new Warden({ url: env("WARDEN_URL"), apiKey: env("WARDEN_OTHER_TENANT_KEY") });

export async function collect(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}
