import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { randomUUID } from "node:crypto";
import { Gone, UnsupportedMediaType, verifyWebhook, WebhookSignatureError } from "../dist/index.js";
import { collect, w } from "./helpers.mjs";

test("a streamed upload from a file with progress, and a download", async () => {
  const c = w();
  const dir = await mkdtemp(join(tmpdir(), "warden-ts-"));
  const src = join(dir, "big.txt");
  await writeFile(src, "0123456789abcdef".repeat(128 << 10)); // 2 MiB of text
  const seen = [];
  const f = await c.files.upload("big.txt", { path: src }, { onProgress: (sent, total) => seen.push([sent, total]) });
  assert.equal(f.size, 2 << 20);
  assert.ok(seen.length >= 8, `${seen.length} progress calls`);
  assert.deepEqual(seen.at(-1), [2 << 20, 2 << 20]);
  const got = [];
  const dest = await c.files.download(f.id, join(dir, "back.txt"), { onProgress: (n) => got.push(n) });
  assert.deepEqual(await readFile(dest), await readFile(src));
  assert.equal(got.at(-1), 2 << 20);
  assert.equal((await c.files.get(f.id)).sha256, f.sha256);
  await c.files.delete(f.id);
  assert.ok((await collect(c.files.list())).every((x) => x.id !== f.id));
});

test("a signed upload URL takes the bytes without the key", async () => {
  const c = w();
  const u = await c.files.uploadUrl("signed.txt", { expiresInSecs: 60 });
  const r = await fetch(u.url, { method: "PUT", body: "through a signed url" });
  assert.equal(r.status, 201);
  const { id } = await r.json();
  assert.equal(Buffer.from(await c.files.read(id)).toString(), "through a signed url");
});

test("an upload of a refused type is typed", async () => {
  const e = await w().files.upload("tool.exe", new Uint8Array([0x4d, 0x5a, 0x90, 0, ...new Array(60).fill(0)])).catch((x) => x);
  assert.ok(e instanceof UnsupportedMediaType, String(e));
  assert.equal(e.code, "type_not_allowed");
});

test("review: submit, follow, wait, outputs, download, delete outputs", async () => {
  const c = w();
  const f = await c.files.upload("notes.txt", "alpha\nbeta\ngamma\n");
  const key = `ts-review-${randomUUID()}`;
  const job = await c.reviews.submit({
    command:
      "for i in 1 2 3; do echo tick $i; sleep 0.3; done; mkdir -p /output/charts; " +
      "wc -l < /input/notes.txt > /output/count.txt; echo '<svg/>' > /output/charts/a.svg",
    files: [f],
    idempotencyKey: key,
  });
  const again = await c.reviews.submit({ command: "true", files: [f], idempotencyKey: key });
  assert.equal(again.id, job.id);
  const followed = (await collect(job.follow())).join("");
  assert.equal((followed.match(/tick/g) ?? []).length, 3, followed);
  const info = await job.wait({ timeoutMs: 120_000 });
  assert.equal(info.status, "succeeded");
  const paths = (await job.outputs()).map((o) => o.path).sort();
  assert.ok(paths.includes("count.txt") && paths.includes("charts/a.svg") && paths.includes("manifest.json"));
  assert.equal(Buffer.from(await job.readOutput("count.txt")).toString(), "3\n");
  const dir = await mkdtemp(join(tmpdir(), "warden-ts-out-"));
  await job.downloadOutputs(dir);
  assert.equal(await readFile(join(dir, "charts/a.svg"), "utf8"), "<svg/>\n");
  assert.match(await job.logs(), /tick 3/);
  assert.ok((await collect(c.reviews.list({ status: "succeeded" }))).some((r) => r.id === job.id));
  assert.equal((await job.deleteOutputs()).outputs, paths.length);
  await assert.rejects(job.readOutput("count.txt"), Gone);
});

test("cancel a running review", async () => {
  const job = await w().reviews.submit({ command: "sleep 60" });
  for (let i = 0; i < 100 && (await job.refresh()).status !== "running"; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(job.info.status, "running");
  assert.equal((await job.cancel()).cancel_requested, true);
  assert.equal((await job.wait({ timeoutMs: 30_000 })).status, "cancelled");
});

test("webhook signatures verify, and forgeries do not", async () => {
  const got = [];
  const srv = createServer((req, res) => {
    const parts = [];
    req.on("data", (d) => parts.push(d));
    req.on("end", () => {
      got.push([Buffer.concat(parts), req.headers["x-warden-signature"]]);
      res.end();
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  try {
    const c = w();
    const job = await c.reviews.submit({ command: "echo hi", webhookUrl: `http://127.0.0.1:${srv.address().port}/hook` });
    await job.wait({ timeoutMs: 60_000 });
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const [body, sig] = got[0];
    const secret = await c.reviews.webhookSecret();
    const event = verifyWebhook(body, sig, secret);
    assert.equal(event.event, "review.finished");
    assert.equal(event.review.id, job.id);
    assert.throws(() => verifyWebhook(Buffer.from(body.toString().replace("succeeded", "failed")), sig, secret), WebhookSignatureError);
    assert.throws(() => verifyWebhook(body, sig, "not-the-secret"), WebhookSignatureError);
    const t = Number(sig.split(",")[0].slice(2));
    assert.throws(() => verifyWebhook(body, sig, secret, { now: t + 3600 }), WebhookSignatureError);
    assert.throws(() => verifyWebhook(body, undefined, secret), WebhookSignatureError);
  } finally {
    srv.close();
  }
});
