import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';

export const REQUEST_ID_HEADER = 'x-request-id';

/** `req_` + 32 hex chars. Incoming ids are not trusted: a client could make two requests share one. */
export const newRequestId = (): string => `req_${randomUUID().replaceAll('-', '')}`;

/** Echoes the request id on every response, errors included, so a client can quote it to support. */
export const requestIdPlugin = fp(
  async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      reply.header(REQUEST_ID_HEADER, request.id);
    });
  },
  { name: 'fieldops-request-id' },
);
