import fp from 'fastify-plugin';
import { REQUEST_ID_HEADER } from '../../shared/contracts/errors.js';

/** Echoes the request id on every response, errors included, so a client can quote it to support. */
export const requestIdPlugin = fp(
  async (app) => {
    // A callback hook: no promise and no turn of the microtask queue for a one-line hook on every request.
    app.addHook('onRequest', (request, reply, done) => {
      reply.header(REQUEST_ID_HEADER, request.id);
      done();
    });
  },
  { name: 'fieldops-request-id' },
);
