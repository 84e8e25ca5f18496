// The SDK's cost over raw HTTP: sandbox create -> exec "true" -> delete,
// through the SDK and through plain fetch calls of the same three requests,
// taking turns in one process. Run by `warden bench sdk` (WARDEN_URL,
// WARDEN_API_KEY); prints p50/p90 of each and the ratio.
import { Warden } from "./dist/index.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const rounds = arg("rounds", 100);
const warmup = arg("warmup", 5);
const url = process.env.WARDEN_URL;
const auth = { authorization: `Bearer ${process.env.WARDEN_API_KEY}` };
const w = new Warden();

async function httpCycle() {
  const post = (path, body) =>
    fetch(url + path, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
  const sb = (await (await post("/v1/sandboxes", {})).json()).id;
  const r = await (await post(`/v1/sandboxes/${sb}/exec`, { command: ["true"] })).json();
  if (r.exit_code !== 0) throw new Error(JSON.stringify(r));
  const d = await fetch(`${url}/v1/sandboxes/${sb}`, { method: "DELETE", headers: auth });
  if (d.status !== 204) throw new Error(`delete: ${d.status}`);
}

async function sdkCycle() {
  const sb = await w.sandboxes.create();
  if ((await sb.exec(["true"])).exitCode !== 0) throw new Error("exec");
  await sb.delete();
}

const times = { http: [], sdk: [] };
for (let i = 0; i < warmup + rounds; i++) {
  const order = i % 2 ? [["http", httpCycle], ["sdk", sdkCycle]] : [["sdk", sdkCycle], ["http", httpCycle]];
  for (const [name, fn] of order) {
    const t0 = performance.now();
    await fn();
    if (i >= warmup) times[name].push(performance.now() - t0);
  }
}
const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const [h, s] = [pct(times.http, 0.5), pct(times.sdk, 0.5)];
console.log(`node    raw HTTP (fetch)  p50 ${h.toFixed(2).padStart(7)} ms  p90 ${pct(times.http, 0.9).toFixed(2).padStart(7)} ms`);
console.log(`node    warden-sdk        p50 ${s.toFixed(2).padStart(7)} ms  p90 ${pct(times.sdk, 0.9).toFixed(2).padStart(7)} ms`);
console.log(`node    SDK / raw HTTP    ${(s / h).toFixed(3)}x  (${rounds} cycles each, taking turns)`);
