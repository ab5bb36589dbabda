import fp from 'fastify-plugin';

/**
 * Fastify's JSON parser (with its prototype-poisoning guard), except that an empty body is no body:
 * many HTTP clients send `Content-Type: application/json` on action POSTs (`/rotate-token`) without one.
 */
export const jsonBodyPlugin = fp(
  async (app) => {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = body.toString();
      if (text.trim() === '') return done(null, undefined);
      return parseJson(request, text, done);
    });
  },
  { name: 'fieldops-json-body' },
);
