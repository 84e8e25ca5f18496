/** The API's shapes (docs/openapi.json), as the SDK returns them. */

export interface File {
  id: string;
  name: string;
  size: number;
  sha256: string;
  content_type: string;
  created_at: string;
  scan: string | null;
}

export interface UploadUrl {
  url: string;
  method: string;
  expires_at: string;
}

export interface Limits {
  memory_mb?: number;
  cpus?: number;
  pids?: number;
  disk_mb?: number;
}

export interface Network {
  mode: "none" | "allowlist";
  rules?: { host: string; ports?: number[] }[];
}

export interface SandboxInfo {
  id: string;
  state: string;
  image: string;
  isolation: string;
  labels: Record<string, string>;
  limits: Limits;
  files: string[];
  secrets: string[];
  network: Network;
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  end_reason: string | null;
  [more: string]: unknown;
}

export interface CreateSandbox {
  image?: string;
  /** File objects or ids: read-only at `/input/<name>`. */
  files?: (File | string)[];
  env?: Record<string, string>;
  limits?: Limits;
  isolation?: "native" | "gvisor";
  network?: Network;
  /** Names of the tenant's secrets, set as environment variables. */
  secrets?: string[];
  labels?: Record<string, string>;
  /** Seconds until it ends by itself (default 300). */
  timeoutSecs?: number;
  workdir?: string;
  /** Other `CreateSandbox` fields (`writable_root`, `user`, `volumes`...). */
  extra?: Record<string, unknown>;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Kill the command after this many seconds. */
  timeoutSecs?: number;
  /** Written to its stdin, which is then closed. */
  stdin?: string;
  /** Output as it comes (the result still has all of it). */
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  pid?: number;
  /** The server kept only the start of the output (JSON mode). */
  truncated: boolean;
}

export interface Entry {
  name: string;
  kind: string;
  size: number;
  mode: number;
  mtime: number;
  link_target?: string | null;
}

export interface Output {
  path: string;
  size: number;
  sha256: string;
}

export interface ReviewInfo {
  id: string;
  status: "pending" | "running" | "succeeded" | "failed" | "cancelled" | "timed_out";
  image: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  attempts: number;
  exit_code: number | null;
  signal: number | null;
  error: string | null;
  cancel_requested: boolean;
  outputs: Output[];
  outputs_truncated: boolean;
  log_truncated: boolean;
  labels: Record<string, string>;
  [more: string]: unknown;
}

export interface SubmitReview {
  /** A shell line (`/bin/sh -c`) or an argv. */
  command: string | string[];
  files?: (File | string)[];
  image?: string;
  env?: Record<string, string>;
  limits?: Limits;
  timeoutSecs?: number;
  network?: Network;
  secrets?: string[];
  labels?: Record<string, string>;
  webhookUrl?: string;
  /** A retried submit with the same key returns the first job. */
  idempotencyKey?: string;
  retryOnFailure?: boolean;
  isolation?: "native" | "gvisor";
}

export interface Secret {
  name: string;
  created_at: string;
  updated_at: string | null;
}

export interface AuditEntry {
  seq: number;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  at: string;
  prev_hash: string;
  hash: string;
}

export interface Usage {
  from: string;
  to: string;
  sandboxes: number;
  cpu_seconds: number;
  wall_seconds: number;
  max_peak_memory_bytes: number;
  storage_bytes: number;
}

/** `(sent, total)` as an upload or download goes. */
export type Progress = (done: number, total: number | null) => void;

/** A network setting that lets a sandbox or job reach only these hosts. */
export function allowlist(...hosts: string[]): Network {
  return { mode: "allowlist", rules: hosts.map((host) => ({ host })) };
}
