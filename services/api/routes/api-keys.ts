import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { badRequest, forbidden, notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { API_KEY_SORT_FIELDS, createApiKeyRepository } from '../repositories/api-keys.js';
import { dataOf, IdParams, NoContent, NullableTimestamp, StringEnum, Timestamp, Uuid } from '../schemas.js';

const ApiKey = Type.Object({
  id: Uuid(),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  user_id: Uuid({ description: 'The user the key acts for' }),
  last_used_at: NullableTimestamp({ description: 'Updated at most once a minute' }),
  revoked_at: NullableTimestamp(),
  created_at: Timestamp(),
});

const CreatedApiKey = Type.Object({ ...ApiKey.properties, key: Type.String({ description: 'The key: shown only in this answer' }) });

const NewApiKey = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  scopes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
    minItems: 1,
    maxItems: 100,
    uniqueItems: true,
    description: 'A subset of your own scopes; all of them when left out',
  })),
}, { additionalProperties: false });

const ApiKeyQuery = listQuerySchema(API_KEY_SORT_FIELDS, {
  status: Type.Optional(StringEnum(['active', 'revoked'])),
  user_id: Type.Optional(Uuid()),
});

export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['api-keys'];

  app.post('/api-keys', {
    schema: { tags, summary: 'Create an API key (the key is shown once)', body: NewApiKey, response: { 201: dataOf(CreatedApiKey) } },
    config: { scope: 'api_keys.write', apiAccess: true, idempotent: 'sealed' },
  }, async (request, reply) => {
    const principal = request.principal;
    const scopes = request.body.scopes ?? principal.scopes;
    return reply.commit(201, async (db) => {
      const keys = createApiKeyRepository(db);
      const known = await keys.knownScopes();
      const unknown = scopes.flatMap((scope, i) => (known.has(scope) ? [] : [{ path: `scopes.${i}`, message: `${scope} is not a scope` }]));
      if (unknown.length) throw badRequest('unknown scopes', unknown);
      const notHeld = scopes.filter((scope) => !principal.scopes.includes(scope));
      // A key never grants more than its creator holds.
      if (notHeld.length) throw forbidden(`you cannot grant scopes you do not hold: ${notHeld.join(', ')}`);
      const created = await keys.create({ tenantId: principal.tenantId, userId: principal.userId, name: request.body.name, scopes });
      // Before the key is shown: no refusal this process remembers can then answer for it.
      app.credentialsAdded();
      return { data: created };
    });
  });

  app.get('/api-keys', {
    schema: { tags, summary: 'List API keys (never the keys themselves)', querystring: ApiKeyQuery, response: { 200: listOf(ApiKey) } },
    config: { scope: 'api_keys.read' },
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createApiKeyRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/api-keys/:id', {
    schema: { tags, summary: 'Get an API key (without the key)', params: IdParams, response: { 200: dataOf(ApiKey) } },
    config: { scope: 'api_keys.read' },
  }, async (request) => {
    const key = await request.tenantDb((db) => createApiKeyRepository(db).find(request.params.id));
    if (!key) throw notFound('API key');
    return { data: key };
  });

  app.delete('/api-keys/:id', {
    schema: { tags, summary: 'Revoke an API key: it answers 401 from then on', params: IdParams, response: { 204: NoContent } },
    config: { scope: 'api_keys.write' },
  }, async (request, reply) => {
    const revoked = await request.tenantDb((db) => createApiKeyRepository(db).revoke(request.params.id));
    app.credentialsChanged();
    if (!revoked) throw notFound('API key');
    return reply.code(204).send(null);
  });
};
