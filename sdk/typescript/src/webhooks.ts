/** Checking that a webhook came from your Warden server. */

import { createHmac, timingSafeEqual } from "node:crypto";
import { WebhookSignatureError } from "./errors.js";

/**
 * Checks `X-Warden-Signature` (`t=<unix seconds>,v1=<hex>`, an HMAC-SHA256 of
 * `"<t>.<body>"` under the tenant's webhook secret) over the raw `body` and
 * returns the event. Throws `WebhookSignatureError` when the header is
 * missing or malformed, the signature does not match, or its time is more
 * than `toleranceSecs` away (a captured delivery replayed later).
 */
export function verifyWebhook(
  body: string | Uint8Array,
  signature: string | null | undefined,
  secret: string,
  options: { toleranceSecs?: number; now?: number } = {},
): any {
  if (!signature) throw new WebhookSignatureError("no X-Warden-Signature header");
  const raw = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
  const fields = new Map<string, string[]>();
  for (const part of signature.split(",")) {
    const [k, ...v] = part.trim().split("=");
    fields.set(k, [...(fields.get(k) ?? []), v.join("=")]);
  }
  const t = Number(fields.get("t")?.[0]);
  if (!Number.isInteger(t)) throw new WebhookSignatureError("the signature header has no valid t=");
  const now = options.now ?? Date.now() / 1000;
  const tolerance = options.toleranceSecs ?? 300;
  if (Math.abs(now - t) > tolerance) {
    throw new WebhookSignatureError(`the signature's time ${t} is outside the ${tolerance} s tolerance`);
  }
  const mac = createHmac("sha256", secret).update(`${t}.`).update(raw).digest();
  const ok = (fields.get("v1") ?? []).some((v) => {
    const given = Buffer.from(v, "hex");
    return given.length === mac.length && timingSafeEqual(given, mac);
  });
  if (!ok) throw new WebhookSignatureError("the signature does not match the body");
  return JSON.parse(raw.toString("utf8"));
}
