/**
 * How a caller presents a credential — a session JWT, an API key or a device token — on every port:
 * `Authorization: Bearer <credential>`, or `?token=<credential>` where the client cannot set headers
 * (a browser's WebSocket; devices on the ingest port). docs/design.md, "Errors and credentials".
 */

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The credential of an `Authorization` header; null when the header is missing or not a bearer one. */
export function parseBearer(authorization: string | undefined): string | null {
  if (!authorization) return null;
  return BEARER.exec(authorization)?.[1] ?? null;
}

/** The header first, else the `token` query parameter; '' when neither is there. */
export function credentialOf(authorization: string | undefined, tokenParam: string | undefined): string {
  return parseBearer(authorization) ?? tokenParam ?? '';
}
