import { createHmac, randomBytes } from 'node:crypto';

/**
 * The webhook contract (docs/design.md, "Webhooks"): what a receiver gets. A POST of the event envelope
 * as JSON, with
 *   X-Fieldops-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the endpoint's secret>
 * (two `v1=` values while a rotated secret's predecessor still signs), X-Fieldops-Event (the type) and
 * X-Fieldops-Delivery (the delivery id, the same on every attempt: a receiver deduplicates on it).
 */

export const SIGNATURE_HEADER = 'x-fieldops-signature';
export const EVENT_HEADER = 'x-fieldops-event';
export const DELIVERY_HEADER = 'x-fieldops-delivery';

/** `POST /v1/webhooks/{id}/test` sends this type; it is never written to the event log. */
export const PING_EVENT = 'ping';

/** The signing key is the secret string itself (UTF-8), prefix included, as the receiver holds it. */
export function webhookSignature(secrets: readonly string[], timestampS: number, body: string): string {
  const signed = `${timestampS}.${body}`;
  const v1 = secrets.map((secret) => `v1=${createHmac('sha256', secret).update(signed).digest('hex')}`);
  return [`t=${timestampS}`, ...v1].join(',');
}

/** `whsec_` + 256 random bits (base64url): shown once, at create and at each rotation. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64url')}`;
