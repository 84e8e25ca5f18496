/** The HTTP layer: the base URL and key, the retry rule, error mapping, SSE. */

import { errorFor, WardenConnectionError } from "./errors.js";

export interface ClientOptions {
  /** Default `WARDEN_URL`, else `http://127.0.0.1:7300`. */
  url?: string;
  /** Default `WARDEN_API_KEY`. */
  apiKey?: string;
  /** Retries of calls safe to repeat (default 2). */
  maxRetries?: number;
  /** Per-request time limit in ms for calls that are not streams (default 60000). */
  timeoutMs?: number;
}

export interface Call {
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  json?: unknown;
  body?: BodyInit | Uint8Array;
  headers?: Record<string, string>;
  /** Safe to send again (GET, PUT, DELETE; a POST only when it says so). */
  idempotent?: boolean;
  /** A stream: no time limit, the caller reads the body. */
  stream?: boolean;
  signal?: AbortSignal;
}

const RETRY_503 = new Set(["unavailable", "capacity", "http_503"]);

export class Http {
  readonly url: string;
  private readonly auth: string;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;

  constructor(o: ClientOptions = {}) {
    this.url = (o.url ?? process.env.WARDEN_URL ?? "http://127.0.0.1:7300").replace(/\/+$/, "");
    const key = o.apiKey ?? process.env.WARDEN_API_KEY;
    if (!key) throw new Error("no API key: pass apiKey or set WARDEN_API_KEY");
    this.auth = `Bearer ${key}`;
    this.maxRetries = o.maxRetries ?? 2;
    this.timeoutMs = o.timeoutMs ?? 60_000;
  }

  /** Sends `call`; a non-2xx answer is thrown as its typed error. */
  async send(call: Call): Promise<Response> {
    const repeatable = call.idempotent ?? ["GET", "HEAD", "PUT", "DELETE"].includes(call.method);
    for (let attempt = 0; ; attempt++) {
      let resp: Response;
      try {
        resp = await fetch(this.urlOf(call), this.init(call));
      } catch (e) {
        if ((e as Error).name === "AbortError" && call.signal?.aborted) throw e;
        if (repeatable && attempt < this.maxRetries) {
          await sleep(backoff(attempt, null));
          continue;
        }
        throw new WardenConnectionError(`${this.url}: ${(e as Error).message}`, { cause: e });
      }
      if (resp.ok) return resp;
      const text = await resp.text();
      const err = errorFor(resp.status, text);
      const transient =
        [502, 504].includes(resp.status) || (resp.status === 503 && RETRY_503.has(err.code));
      if (repeatable && transient && attempt < this.maxRetries) {
        await sleep(backoff(attempt, resp.headers.get("retry-after")));
        continue;
      }
      throw err;
    }
  }

  async json<T>(call: Call): Promise<T> {
    const resp = await this.send(call);
    const text = await resp.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async bytes(call: Call): Promise<Uint8Array> {
    return new Uint8Array(await (await this.send(call)).arrayBuffer());
  }

  private urlOf(call: Call): string {
    const u = new URL(this.url + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(one));
    }
    return u.toString();
  }

  private init(call: Call): RequestInit & { duplex?: "half" } {
    const headers: Record<string, string> = {
      authorization: this.auth,
      "user-agent": "warden-sdk-typescript/0.1",
      ...call.headers,
    };
    let body = call.body;
    if (call.json !== undefined) {
      body = JSON.stringify(call.json);
      headers["content-type"] = "application/json";
    }
    const signals = [call.signal, call.stream ? undefined : AbortSignal.timeout(this.timeoutMs)];
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    return {
      method: call.method,
      headers,
      body: body as BodyInit | undefined,
      signal: live.length ? AbortSignal.any(live) : undefined,
      // A streamed request body (an upload from a file).
      duplex: body instanceof ReadableStream ? "half" : undefined,
    };
  }
}

export function seg(s: string): string {
  return encodeURIComponent(s);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function backoff(attempt: number, retryAfter: string | null): number {
  const s = retryAfter ? Number(retryAfter) : NaN;
  if (Number.isFinite(s)) return Math.min(s, 10) * 1000;
  return Math.min(250 * 2 ** attempt, 4000) * (0.5 + Math.random() / 2);
}

/** `text/event-stream` events from a response body, as they arrive. */
export async function* events(body: ReadableStream<Uint8Array>): AsyncGenerator<[string, any]> {
  const dec = new TextDecoder();
  let buf = "";
  let event = "";
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      else if (line === "" && event) {
        const raw = data.join("\n");
        let parsed: unknown = raw;
        try {
          parsed = JSON.parse(raw);
        } catch {
          // keep the text
        }
        yield [event, parsed];
        event = "";
        data = [];
      }
    }
  }
}
