/** `Warden`: the client, and the handles it gives (sandboxes, processes, reviews). */

import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Conflict, errorFor, NotFound } from "./errors.js";
import { Call, ClientOptions, events, Http, seg } from "./http.js";
import type {
  AuditEntry,
  CreateSandbox,
  Entry,
  ExecOptions,
  ExecResult,
  File,
  Output,
  Progress,
  ReviewInfo,
  SandboxInfo,
  Secret,
  SubmitReview,
  UploadUrl,
  Usage,
} from "./types.js";

const ids = (files?: (File | string)[]) => (files ?? []).map((f) => (typeof f === "string" ? f : f.id));

/** A client of one Warden server with a tenant API key. */
export class Warden {
  readonly http: Http;
  readonly files: Files;
  readonly sandboxes: Sandboxes;
  readonly reviews: Reviews;
  readonly secrets: Secrets;

  constructor(options: ClientOptions = {}) {
    this.http = new Http(options);
    this.files = new Files(this.http);
    this.sandboxes = new Sandboxes(this.http);
    this.reviews = new Reviews(this.http);
    this.secrets = new Secrets(this.http);
  }

  /** The tenant's audit log from sequence `after` on, oldest first. */
  async *audit(options: { after?: number; limit?: number } = {}): AsyncGenerator<AuditEntry> {
    let after = options.after;
    for (;;) {
      const page = await this.http.json<{ items: AuditEntry[]; next_cursor: string | null }>({
        method: "GET",
        path: "/v1/audit",
        query: { after, limit: options.limit ?? 100 },
      });
      yield* page.items;
      if (!page.next_cursor || page.items.length === 0) return;
      after = Number(page.next_cursor);
    }
  }

  /** What the tenant's sandboxes used (RFC 3339 bounds). */
  usage(options: { from?: string; to?: string } = {}): Promise<Usage> {
    return this.http.json({ method: "GET", path: "/v1/usage", query: { from: options.from, to: options.to } });
  }
}

async function* pages<T>(http: Http, path: string, query: Call["query"]): AsyncGenerator<T> {
  let cursor: string | undefined;
  for (;;) {
    const page = await http.json<{ items: T[]; next_cursor: string | null }>({
      method: "GET",
      path,
      query: { ...query, cursor },
    });
    yield* page.items;
    if (!page.next_cursor || page.items.length === 0) return;
    cursor = page.next_cursor;
  }
}

/** A body from bytes, text or a file path; with progress, streamed in pieces. */
async function source(
  data: Uint8Array | string | { path: string },
  onProgress?: Progress,
): Promise<{ body: BodyInit | Uint8Array; total: number }> {
  if (typeof data !== "object" || data instanceof Uint8Array) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (!onProgress) return { body: bytes, total: bytes.length };
    const total = bytes.length;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        const piece = bytes.subarray(sent, sent + (256 << 10));
        sent += piece.length;
        c.enqueue(piece);
        onProgress(sent, total);
      },
    });
    return { body, total };
  }
  const total = (await stat(data.path)).size;
  let sent = 0;
  const counted = new TransformStream<Uint8Array, Uint8Array>({
    transform(piece, c) {
      sent += piece.length;
      c.enqueue(piece);
      onProgress?.(sent, total);
    },
  });
  const file = Readable.toWeb(createReadStream(data.path, { highWaterMark: 256 << 10 })) as ReadableStream<Uint8Array>;
  return { body: file.pipeThrough(counted), total };
}

/** Streams an answer to `dest` (a temporary name, renamed at the end). */
async function download(http: Http, path: string, dest: string, onProgress?: Progress): Promise<string> {
  const resp = await http.send({ method: "GET", path, stream: true });
  const total = Number(resp.headers.get("content-length") ?? NaN);
  const tmp = join(dirname(dest), `.${dest.split("/").pop()}.part`);
  let got = 0;
  const counted = new TransformStream<Uint8Array, Uint8Array>({
    transform(piece, c) {
      got += piece.length;
      c.enqueue(piece);
      onProgress?.(got, Number.isFinite(total) ? total : null);
    },
  });
  try {
    await pipeline(Readable.fromWeb(resp.body!.pipeThrough(counted) as any), createWriteStream(tmp));
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return dest;
}

/** The tenant's uploads. */
export class Files {
  constructor(private readonly http: Http) {}

  /** Uploads bytes, text or `{path}` (streamed from disk); `onProgress(sent, total)`. */
  async upload(name: string, data: Uint8Array | string | { path: string }, options: { onProgress?: Progress } = {}): Promise<File> {
    const { body } = await source(data, options.onProgress);
    return this.http.json({
      method: "POST",
      path: "/v1/files",
      query: { name },
      body,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  /** A signed URL anyone may `PUT` the file's bytes to until it expires. */
  uploadUrl(name: string, options: { expiresInSecs?: number } = {}): Promise<UploadUrl> {
    return this.http.json({
      method: "POST",
      path: "/v1/files/upload-url",
      json: { name, ...(options.expiresInSecs ? { expires_in_secs: options.expiresInSecs } : {}) },
    });
  }

  list(options: { limit?: number } = {}): AsyncGenerator<File> {
    return pages<File>(this.http, "/v1/files", { limit: options.limit ?? 100 });
  }

  get(id: string): Promise<File> {
    return this.http.json({ method: "GET", path: `/v1/files/${seg(id)}` });
  }

  read(id: string): Promise<Uint8Array> {
    return this.http.bytes({ method: "GET", path: `/v1/files/${seg(id)}/content` });
  }

  download(id: string, dest: string, options: { onProgress?: Progress } = {}): Promise<string> {
    return download(this.http, `/v1/files/${seg(id)}/content`, dest, options.onProgress);
  }

  async delete(id: string): Promise<void> {
    await this.http.send({ method: "DELETE", path: `/v1/files/${seg(id)}` });
  }
}

export class Sandboxes {
  constructor(private readonly http: Http) {}

  /** A new sandbox; `files` appear read-only at `/input/<name>`. */
  async create(o: CreateSandbox = {}): Promise<Sandbox> {
    const body: Record<string, unknown> = { files: ids(o.files), ...o.extra };
    const set = (k: string, v: unknown) => v !== undefined && (body[k] = v);
    set("image", o.image);
    set("env", o.env);
    set("limits", o.limits);
    set("isolation", o.isolation);
    set("network", o.network);
    set("secrets", o.secrets);
    set("labels", o.labels);
    set("timeout_secs", o.timeoutSecs);
    set("workdir", o.workdir);
    const info = await this.http.json<SandboxInfo>({ method: "POST", path: "/v1/sandboxes", json: body });
    return new Sandbox(this.http, info);
  }

  async get(id: string): Promise<Sandbox> {
    return new Sandbox(this.http, await this.http.json({ method: "GET", path: `/v1/sandboxes/${seg(id)}` }));
  }

  list(options: { state?: string; labels?: Record<string, string>; limit?: number } = {}): AsyncGenerator<SandboxInfo> {
    const label = Object.entries(options.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    return pages<SandboxInfo>(this.http, "/v1/sandboxes", { state: options.state, label, limit: options.limit ?? 100 });
  }
}

function execBody(command: string | string[], o: ExecOptions): Record<string, unknown> {
  const body: Record<string, unknown> = typeof command === "string" ? { shell: command } : { command };
  if (o.cwd !== undefined) body.cwd = o.cwd;
  if (o.env) body.env = o.env;
  if (o.timeoutSecs !== undefined) body.timeout_secs = o.timeoutSecs;
  if (o.stdin !== undefined) body.stdin = o.stdin;
  return body;
}

const fromJson = (r: any): ExecResult => ({
  exitCode: r.exit_code ?? null,
  signal: r.signal ?? null,
  timedOut: Boolean(r.timed_out),
  stdout: r.stdout ?? "",
  stderr: r.stderr ?? "",
  pid: r.pid,
  truncated: Boolean(r.truncated),
});

/** A sandbox: commands, processes and files in it. */
export class Sandbox {
  readonly id: string;
  readonly files: SandboxFiles;

  constructor(
    private readonly http: Http,
    public info: SandboxInfo,
  ) {
    this.id = info.id;
    this.files = new SandboxFiles(http, info.id);
  }

  async refresh(): Promise<SandboxInfo> {
    this.info = await this.http.json({ method: "GET", path: `/v1/sandboxes/${seg(this.id)}` });
    return this.info;
  }

  /** Runs `command` (a shell line or an argv) to its end; with `onStdout`/`onStderr`, streamed. */
  async exec(command: string | string[], o: ExecOptions = {}): Promise<ExecResult> {
    const call: Call = { method: "POST", path: `/v1/sandboxes/${seg(this.id)}/exec`, json: execBody(command, o), signal: o.signal };
    if (!o.onStdout && !o.onStderr) return fromJson(await this.http.json(call));
    const resp = await this.http.send({ ...call, stream: true, headers: { accept: "text/event-stream" } });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const result: any = {};
    for await (const [event, data] of events(resp.body!)) {
      if (event === "stdout" || event === "stderr") {
        const bytes = Buffer.from(data.data, "base64");
        (event === "stdout" ? out : err).push(bytes);
        const text = dec[event].decode(bytes, { stream: true });
        const cb = event === "stdout" ? o.onStdout : o.onStderr;
        if (cb && text) cb(text);
      } else if (event === "started") result.pid = data.pid;
      else if (event === "exit") Object.assign(result, data);
      else if (event === "error") throw errorFor(500, JSON.stringify({ error: data }));
    }
    return fromJson({
      ...result,
      stdout: Buffer.concat(out).toString("utf8"),
      stderr: Buffer.concat(err).toString("utf8"),
    });
  }

  /** Starts `command` in the background; with `stdin: true` its stdin stays open. */
  async spawn(command: string | string[], o: Omit<ExecOptions, "onStdout" | "onStderr" | "stdin"> & { stdin?: boolean } = {}): Promise<Process> {
    const body = { ...execBody(command, { ...o, stdin: undefined }), background: true, ...(o.stdin ? { stdin_open: true } : {}) };
    const r = await this.http.json<{ pid: number }>({ method: "POST", path: `/v1/sandboxes/${seg(this.id)}/exec`, json: body });
    return new Process(this.http, this.id, r.pid);
  }

  processes(): Promise<{ pid: number; command: string; background: boolean; exit: unknown }[]> {
    return this.http
      .json<{ items: any[] }>({ method: "GET", path: `/v1/sandboxes/${seg(this.id)}/processes` })
      .then((r) => r.items);
  }

  /** It now ends `seconds` from now. */
  async setTimeout(seconds: number): Promise<SandboxInfo> {
    this.info = await this.http.json({
      method: "POST",
      path: `/v1/sandboxes/${seg(this.id)}/timeout`,
      json: { timeout_secs: seconds },
      idempotent: true,
    });
    return this.info;
  }

  /** Its connection attempts through its egress allowlist. */
  async egress(options: { after?: number; limit?: number } = {}): Promise<unknown[]> {
    const r = await this.http.json<{ items: unknown[] }>({
      method: "GET",
      path: `/v1/sandboxes/${seg(this.id)}/egress`,
      query: { after: options.after, limit: options.limit ?? 100 },
    });
    return r.items;
  }

  async delete(options: { missingOk?: boolean } = {}): Promise<void> {
    try {
      await this.http.send({ method: "DELETE", path: `/v1/sandboxes/${seg(this.id)}` });
    } catch (e) {
      if (!(options.missingOk && (e instanceof NotFound || e instanceof Conflict))) throw e;
    }
  }

  /** `await using sb = await w.sandboxes.create()` deletes it on the way out. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete({ missingOk: true });
  }
}

/** A background process in a sandbox. */
export class Process {
  constructor(
    private readonly http: Http,
    readonly sandboxId: string,
    readonly pid: number,
  ) {}

  private path(what: string): string {
    return `/v1/sandboxes/${seg(this.sandboxId)}/processes/${this.pid}/${what}`;
  }

  async sendStdin(data: string | Uint8Array, options: { close?: boolean } = {}): Promise<void> {
    await this.http.send({
      method: "POST",
      path: this.path("stdin"),
      query: options.close ? { close: "true" } : {},
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  closeStdin(): Promise<void> {
    return this.sendStdin("", { close: true });
  }

  async signal(signal: string | number = "TERM"): Promise<void> {
    await this.http.send({ method: "POST", path: this.path("signal"), json: { signal } });
  }

  kill(): Promise<void> {
    return this.signal("KILL");
  }

  /** Waits for it to end: its exit status (the output is in `output()`). */
  async wait(): Promise<ExecResult> {
    const r = await this.http.json({ method: "POST", path: this.path("wait"), idempotent: true, stream: true });
    return fromJson({ ...(r as object), pid: this.pid });
  }

  /** `["stdout" | "stderr", bytes]` from its start, until it ends. */
  async *output(): AsyncGenerator<["stdout" | "stderr", Uint8Array]> {
    const resp = await this.http.send({ method: "GET", path: this.path("output"), stream: true, headers: { accept: "text/event-stream" } });
    for await (const [event, data] of events(resp.body!)) {
      if (event === "stdout" || event === "stderr") yield [event, Buffer.from(data.data, "base64")];
      else if (event === "exit") return;
    }
  }
}

/** Files inside a sandbox, by absolute path in its own view. */
export class SandboxFiles {
  constructor(
    private readonly http: Http,
    private readonly id: string,
  ) {}

  private p(what = ""): string {
    return `/v1/sandboxes/${seg(this.id)}/files${what}`;
  }

  read(path: string): Promise<Uint8Array> {
    return this.http.bytes({ method: "GET", path: this.p(), query: { path } });
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  async write(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<Entry> {
    const st = await this.http.json<Omit<Entry, "name">>({
      method: "PUT",
      path: this.p(),
      query: { path, mode: options.mode?.toString(8) },
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    return { name: path.split("/").pop() ?? path, ...st };
  }

  async list(path: string): Promise<Entry[]> {
    return (await this.http.json<{ items: Entry[] }>({ method: "GET", path: this.p("/list"), query: { path } })).items;
  }

  async stat(path: string): Promise<Entry> {
    const st = await this.http.json<Omit<Entry, "name">>({ method: "GET", path: this.p("/stat"), query: { path } });
    return { name: path.split("/").pop() ?? path, ...st };
  }

  async mkdir(path: string): Promise<void> {
    await this.http.send({ method: "POST", path: this.p("/mkdir"), query: { path }, idempotent: true });
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.http.send({ method: "DELETE", path: this.p(), query: { path, recursive: options.recursive ? "true" : undefined } });
  }
}

/** Review jobs: a command run to its end over files, `/output` kept. */
export class Reviews {
  constructor(private readonly http: Http) {}

  async submit(o: SubmitReview): Promise<Review> {
    const body: Record<string, unknown> = { files: ids(o.files) };
    if (typeof o.command === "string") body.shell = o.command;
    else body.command = o.command;
    const map: [string, unknown][] = [
      ["image", o.image],
      ["env", o.env],
      ["limits", o.limits],
      ["timeout_secs", o.timeoutSecs],
      ["network", o.network],
      ["secrets", o.secrets],
      ["labels", o.labels],
      ["webhook_url", o.webhookUrl],
      ["idempotency_key", o.idempotencyKey],
      ["retry_on_failure", o.retryOnFailure],
      ["isolation", o.isolation],
    ];
    for (const [k, v] of map) if (v !== undefined) body[k] = v;
    const info = await this.http.json<ReviewInfo>({
      method: "POST",
      path: "/v1/reviews",
      json: body,
      idempotent: Boolean(o.idempotencyKey),
    });
    return new Review(this.http, info);
  }

  async get(id: string): Promise<Review> {
    return new Review(this.http, await this.http.json({ method: "GET", path: `/v1/reviews/${seg(id)}` }));
  }

  list(options: { status?: string; limit?: number } = {}): AsyncGenerator<ReviewInfo> {
    return pages<ReviewInfo>(this.http, "/v1/reviews", { status: options.status, limit: options.limit ?? 100 });
  }

  /** The tenant's key for `verifyWebhook`. */
  async webhookSecret(): Promise<string> {
    return (await this.http.json<{ secret: string }>({ method: "GET", path: "/v1/webhooks/secret" })).secret;
  }
}

const ENDED = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

export class Review {
  readonly id: string;

  constructor(
    private readonly http: Http,
    public info: ReviewInfo,
  ) {
    this.id = info.id;
  }

  get ended(): boolean {
    return ENDED.has(this.info.status);
  }

  async refresh(): Promise<ReviewInfo> {
    this.info = await this.http.json({ method: "GET", path: `/v1/reviews/${seg(this.id)}` });
    return this.info;
  }

  /** Waits until it has ended; rejects after `timeoutMs`. */
  async wait(options: { timeoutMs?: number; pollMs?: number } = {}): Promise<ReviewInfo> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    while (!ENDED.has((await this.refresh()).status)) {
      if (Date.now() >= deadline) throw new Error(`review ${this.id} still ${this.info.status} after ${options.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    }
    return this.info;
  }

  /** What it printed so far. */
  async logs(options: { stream?: "stdout" | "stderr" | "both" } = {}): Promise<string> {
    const b = await this.http.bytes({ method: "GET", path: `/v1/reviews/${seg(this.id)}/logs`, query: { stream: options.stream ?? "both" } });
    return new TextDecoder().decode(b);
  }

  /** The log as it is printed, until the job ends. */
  async *follow(options: { stream?: "stdout" | "stderr" | "both" } = {}): AsyncGenerator<string> {
    const resp = await this.http.send({
      method: "GET",
      path: `/v1/reviews/${seg(this.id)}/logs`,
      query: { stream: options.stream ?? "both", follow: "true" },
      stream: true,
    });
    const dec = new TextDecoder();
    for await (const piece of resp.body as unknown as AsyncIterable<Uint8Array>) {
      const text = dec.decode(piece, { stream: true });
      if (text) yield text;
    }
  }

  async outputs(): Promise<Output[]> {
    return (await this.http.json<{ items: Output[] }>({ method: "GET", path: `/v1/reviews/${seg(this.id)}/outputs` })).items;
  }

  private outputPath(path: string): string {
    return `/v1/reviews/${seg(this.id)}/outputs/` + path.replace(/^\/+/, "").split("/").map(seg).join("/");
  }

  readOutput(path: string): Promise<Uint8Array> {
    return this.http.bytes({ method: "GET", path: this.outputPath(path) });
  }

  downloadOutput(path: string, dest: string, options: { onProgress?: Progress } = {}): Promise<string> {
    return download(this.http, this.outputPath(path), dest, options.onProgress);
  }

  /** Every output under `destDir`, keeping their relative paths. */
  async downloadOutputs(destDir: string): Promise<string[]> {
    const done: string[] = [];
    for (const o of await this.outputs()) {
      const parts = o.path.split("/").filter((p) => p && p !== "." && p !== "..");
      const target = join(destDir, ...parts);
      await mkdir(dirname(target), { recursive: true });
      done.push(await this.downloadOutput(o.path, target));
    }
    return done;
  }

  async cancel(): Promise<ReviewInfo> {
    this.info = await this.http.json({ method: "POST", path: `/v1/reviews/${seg(this.id)}/cancel`, idempotent: true });
    return this.info;
  }

  deleteOutputs(): Promise<{ outputs: number; freed_bytes: number }> {
    return this.http.json({ method: "DELETE", path: `/v1/reviews/${seg(this.id)}/outputs` });
  }
}

/** Write-only values given to sandboxes and jobs as environment variables. */
export class Secrets {
  constructor(private readonly http: Http) {}

  set(name: string, value: string, options: { replace?: boolean } = {}): Promise<Secret> {
    return this.http.json({
      method: "POST",
      path: "/v1/secrets",
      query: options.replace ? { replace: "true" } : {},
      json: { name, value },
      idempotent: Boolean(options.replace),
    });
  }

  async list(): Promise<Secret[]> {
    return (await this.http.json<{ items: Secret[] }>({ method: "GET", path: "/v1/secrets" })).items;
  }

  async delete(name: string): Promise<void> {
    await this.http.send({ method: "DELETE", path: `/v1/secrets/${seg(name)}` });
  }
}
