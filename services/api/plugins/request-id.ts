import fp from 'fastify-plugin';
import { REQUEST_ID_HEADER } from '../../shared/contracts/errors.js';

/** Echoes the request id on every response, errors included, so a client can quote it to support. */
export const requestIdPlugin = fp(
  async (app) => {
    app.addHook('onRequest', async (request, reply) => {
      reply.header(REQUEST_ID_HEADER, request.id);
    });
  },
  { name: 'fieldops-request-id' },
);
