/** Warden's TypeScript SDK: sandboxes, uploads, review jobs, secrets, audit and usage over `/v1`. */

export { Warden, Files, Sandboxes, Sandbox, Process, SandboxFiles, Reviews, Review, Secrets } from "./client.js";
export type { ClientOptions } from "./http.js";
export * from "./errors.js";
export * from "./types.js";
export { verifyWebhook } from "./webhooks.js";
