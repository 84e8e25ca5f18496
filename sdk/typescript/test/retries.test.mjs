// Retries against a real HTTP server on loopback that fails the first tries:
// only calls safe to repeat are sent again.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { Unavailable, Warden, WardenConnectionError } from "../dist/index.js";

async function flaky(fails) {
  const seen = [];
  const srv = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push(`${req.method} ${req.url}`);
      const failing = fails-- > 0;
      res.writeHead(failing ? 503 : 200, { "content-type": "application/json", "retry-after": "0" });
      res.end(JSON.stringify(failing ? { error: { code: "unavailable", message: "later" } } : { id: "file_x", status: "pending" }));
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${srv.address().port}`, seen, close: () => srv.close() };
}

test("reads are retried through a transient 503", async () => {
  const s = await flaky(2);
  try {
    const c = new Warden({ url: s.url, apiKey: "wk_x.y", maxRetries: 2 });
    assert.equal((await c.files.get("file_x")).id, "file_x");
    assert.equal(s.seen.length, 3);
  } finally {
    s.close();
  }
});

test("a POST without an idempotency key is sent once", async () => {
  const s = await flaky(1);
  try {
    const c = new Warden({ url: s.url, apiKey: "wk_x.y", maxRetries: 3 });
    await assert.rejects(c.files.upload("a.txt", "x"), Unavailable);
    assert.deepEqual(s.seen, ["POST /v1/files?name=a.txt"]);
  } finally {
    s.close();
  }
});

test("a submit with an idempotency key is retried", async () => {
  const s = await flaky(1);
  try {
    const c = new Warden({ url: s.url, apiKey: "wk_x.y", maxRetries: 2 });
    assert.equal((await c.reviews.submit({ command: "true", idempotencyKey: "k" })).id, "file_x");
    assert.deepEqual(s.seen, ["POST /v1/reviews", "POST /v1/reviews"]);
  } finally {
    s.close();
  }
});

test("an unreachable server says so", async () => {
  const c = new Warden({ url: "http://127.0.0.1:9", apiKey: "wk_x.y", maxRetries: 1 });
  await assert.rejects(c.files.get("file_x"), WardenConnectionError);
});
