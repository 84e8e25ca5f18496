import assert from "node:assert/strict";
import { test } from "node:test";
import { allowlist, CommandDenied, Conflict, NotFound, Unauthorized, Warden } from "../dist/index.js";
import { collect, env, other, w } from "./helpers.mjs";

test("create with files, exec, delete", async () => {
  const c = w();
  const f = await c.files.upload("scores.csv", "name,score\na,1\nb,2\n");
  const sb = await c.sandboxes.create({ files: [f], labels: { suite: "ts" }, limits: { memory_mb: 256 }, timeoutSecs: 120 });
  try {
    assert.equal(sb.info.state, "running");
    let r = await sb.exec("wc -l < /input/scores.csv");
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.trim(), "3");
    r = await sb.exec(["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert.deepEqual([r.exitCode, r.stdout, r.stderr], [7, "out\n", "err\n"]);
    r = await sb.exec("cat", { stdin: "fed through stdin" });
    assert.equal(r.stdout, "fed through stdin");
    r = await sb.exec("sleep 5", { timeoutSecs: 0.5 });
    assert.ok(r.timedOut && r.exitCode === null);
    const listed = await collect(c.sandboxes.list({ labels: { suite: "ts" } }));
    assert.ok(listed.some((s) => s.id === sb.id));
  } finally {
    await sb.delete();
  }
  await assert.rejects(sb.exec("true"), Conflict);
  assert.equal((await c.sandboxes.get(sb.id)).info.state, "stopped");
});

test("streamed exec delivers output as it comes", async () => {
  const sb = await w().sandboxes.create();
  try {
    const seen = [];
    const r = await sb.exec("for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done >&2", {
      onStdout: (t) => seen.push(t),
      onStderr: (t) => seen.push(t),
    });
    assert.equal(r.stdout, "line 1\nline 2\nline 3\n");
    assert.equal(r.stderr, "done\n");
    assert.ok(seen.length >= 3, JSON.stringify(seen));
  } finally {
    await sb.delete();
  }
});

test("background process with stdin, signals and wait", async () => {
  const sb = await w().sandboxes.create();
  try {
    const p = await sb.spawn("read a; echo got $a; read b; echo got $b", { stdin: true });
    await p.sendStdin("one\n");
    await p.sendStdin("two\n", { close: true });
    assert.equal((await p.wait()).exitCode, 0);
    const out = (await collect(p.output())).filter(([s]) => s === "stdout").map(([, d]) => Buffer.from(d).toString());
    assert.equal(out.join(""), "got one\ngot two\n");
    const sleeper = await sb.spawn("sleep 60");
    assert.ok((await sb.processes()).some((x) => x.pid === sleeper.pid));
    await sleeper.signal("TERM");
    assert.equal((await sleeper.wait()).signal, 15);
  } finally {
    await sb.delete();
  }
});

test("files inside the sandbox", async () => {
  const sb = await w().sandboxes.create();
  try {
    await sb.files.mkdir("/scratch/a/b");
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const st = await sb.files.write("/scratch/a/b/data.bin", bytes, { mode: 0o600 });
    assert.equal(st.size, 256);
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(Buffer.from(await sb.files.read("/scratch/a/b/data.bin")), Buffer.from(bytes));
    assert.deepEqual((await sb.files.list("/scratch/a/b")).map((e) => e.name), ["data.bin"]);
    assert.equal((await sb.files.stat("/scratch/a")).kind, "dir");
    await sb.files.remove("/scratch/a", { recursive: true });
    await assert.rejects(sb.files.stat("/scratch/a"), NotFound);
  } finally {
    await sb.delete();
  }
});

test("timeout and a network allowlist", async () => {
  const sb = await w().sandboxes.create({ network: allowlist("example.invalid") });
  try {
    assert.equal(sb.info.network.mode, "allowlist");
    const before = sb.info.expires_at;
    assert.ok((await sb.setTimeout(3600)).expires_at > before);
    assert.deepEqual(await sb.egress(), []);
  } finally {
    await sb.delete();
  }
});

test("errors are typed and carry the code; another tenant is walled off", async () => {
  const c = w();
  const sb = await c.sandboxes.create();
  try {
    const e = await other().sandboxes.get(sb.id).catch((x) => x);
    assert.ok(e instanceof NotFound, String(e));
    assert.equal(e.status, 404);
    assert.equal(e.code, "not_found");
    const f = await c.files.upload("mine.txt", "private");
    await assert.rejects(other().files.read(f.id), NotFound);
    await assert.rejects(other().sandboxes.create({ files: [f] }), NotFound);
    const bad = new Warden({ url: env("WARDEN_URL"), apiKey: "wk_nope.nope" });
    await assert.rejects(bad.sandboxes.create(), (x) => x instanceof Unauthorized && x.code === "unauthorized");
    await assert.rejects(sb.exec("touch /scratch/forbidden"), (x) => x instanceof CommandDenied && x.status === 403);
    assert.equal((await sb.exec("test -e /scratch/forbidden")).exitCode, 1);
  } finally {
    await sb.delete();
  }
});

test("secrets reach the sandbox masked", async () => {
  const c = w();
  await c.secrets.set("TS_TOKEN", "s3cr3t-value-123");
  assert.ok((await c.secrets.list()).some((s) => s.name === "TS_TOKEN"));
  const sb = await c.sandboxes.create({ secrets: ["TS_TOKEN"] });
  try {
    const r = await sb.exec('echo "$TS_TOKEN"; test "$TS_TOKEN" = s3cr3t-value-123');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, "***\n");
  } finally {
    await sb.delete();
  }
  await c.secrets.set("TS_TOKEN", "another-value-456", { replace: true });
  await c.secrets.delete("TS_TOKEN");
  await assert.rejects(c.secrets.delete("TS_TOKEN"), NotFound);
});

test("audit and usage", async () => {
  const c = w();
  const sb = await c.sandboxes.create();
  await sb.exec("true");
  await sb.delete();
  const entries = (await collect(c.audit())).filter((e) => e.target.split(":")[0] === sb.id);
  assert.deepEqual(entries.map((e) => e.action), ["sandbox.create", "sandbox.exec", "sandbox.delete"]);
  const all = await collect(c.audit());
  const last2 = all.slice(-2);
  assert.deepEqual((await collect(c.audit({ after: last2[0].seq }))).map((e) => e.seq), [last2[1].seq]);
  const u = await c.usage();
  assert.ok(u.sandboxes >= 1 && u.wall_seconds > 0);
});
