/** Typed errors: every refusal of the server carries its error code. */

/** An error answer of the Warden API: its HTTP status, error code and message. */
export class WardenError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message ? `${status} ${code}: ${message}` : `${status} ${code}`);
    this.name = new.target.name;
    this.detail = message;
  }
  /** The server's message alone. */
  readonly detail: string;
}

export class BadRequest extends WardenError {}
export class Unauthorized extends WardenError {}
export class Forbidden extends WardenError {}
/** 403 `command_denied`: the tenant's command policy refused the command. */
export class CommandDenied extends Forbidden {}
/** 404: no such thing for this tenant (another tenant's ids answer the same). */
export class NotFound extends WardenError {}
export class Conflict extends WardenError {}
export class Gone extends WardenError {}
export class PayloadTooLarge extends WardenError {}
export class UnsupportedMediaType extends WardenError {}
export class Rejected extends WardenError {}
/** 429 `quota_exceeded`: the message names the quota. */
export class QuotaExceeded extends WardenError {}
export class ServerError extends WardenError {}
/** 503: `unavailable`, `capacity`, `secrets_disabled`... */
export class Unavailable extends WardenError {}
export class StorageFull extends WardenError {}

/** The server could not be reached, or the connection broke. */
export class WardenConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WardenConnectionError";
  }
}

/** A webhook's signature is missing, malformed, stale or wrong. */
export class WebhookSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookSignatureError";
  }
}

const BY_STATUS: Record<number, new (s: number, c: string, m: string) => WardenError> = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  410: Gone,
  413: PayloadTooLarge,
  415: UnsupportedMediaType,
  422: Rejected,
  429: QuotaExceeded,
  503: Unavailable,
  507: StorageFull,
};

/** The typed error of an error answer (a body that is not the API's error shape still gives one). */
export function errorFor(status: number, body: string): WardenError {
  let code = `http_${status}`;
  let message = body.slice(0, 200).trim();
  try {
    const e = JSON.parse(body).error;
    if (e && typeof e.code === "string") {
      code = e.code;
      message = String(e.message ?? "");
    }
  } catch {
    // not JSON: keep the start of the body
  }
  if (code === "command_denied") return new CommandDenied(status, code, message);
  const Cls = BY_STATUS[status] ?? (status >= 500 ? ServerError : WardenError);
  return new Cls(status, code, message);
}
