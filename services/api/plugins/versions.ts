import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { etagOf, parseIfMatch, type Precondition } from '../preconditions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's `If-Match`, parsed; null without one. Pass it to the repository's write. */
    readonly ifMatch: Precondition | null;
  }
}

/**
 * ETag on every answer that is one versioned object (`{"data":{…,"version":n}}`): single GETs, creates,
 * updates and actions alike, so a client always holds the tag of what it last saw. Answers sent
 * pre-serialized (reply.commit) set theirs themselves. The ETag names the version of the object's own
 * fields; live readings folded into an answer (a device's last position) do not change it.
 */
export const versionsPlugin = fp(
  async (app) => {
    app.decorateRequest('ifMatch', {
      getter(this: FastifyRequest) {
        return parseIfMatch(this.headers['if-match']);
      },
    });

    // A callback hook: no promise per answer for a synchronous header.
    app.addHook('preSerialization', (_request, reply, payload, done) => {
      setEtag(reply, payload);
      done(null, payload);
    });
  },
  { name: 'fieldops-versions' },
);

/** Sets `ETag` when `payload` is a single versioned object. */
export function setEtag(reply: FastifyReply, payload: unknown): void {
  const version = versionOf(payload);
  if (version !== null && reply.statusCode < 300) reply.header('etag', etagOf(version));
}

function versionOf(payload: unknown): number | null {
  if (!payload || typeof payload !== 'object') return null;
  const data = (payload as { data?: unknown }).data;
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  const version = (data as { version?: unknown }).version;
  return typeof version === 'number' ? version : null;
}
