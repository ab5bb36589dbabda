import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { unauthorized } from '../../shared/contracts/errors.js';
import { createIdentityRepository } from '../repositories/identities.js';
import { dataOf, Nullable, StringEnum, Uuid } from '../schemas.js';

const Me = Type.Object({
  kind: StringEnum(['user', 'api_key']),
  tenant_id: Uuid(),
  scopes: Type.Array(Type.String()),
  plan: Type.String(),
  addons: Type.Array(Type.String()),
  user: Type.Object({ id: Uuid(), email: Type.String(), name: Nullable(Type.String()), role: Type.String() }),
  api_key: Nullable(Type.Object({ id: Uuid(), name: Type.String(), prefix: Type.String() })),
  organization: Type.Object({ id: Uuid(), name: Type.String() }),
});

export const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    schema: { tags: ['auth'], summary: 'The caller: user or API key, organization, scopes and plan', response: { 200: dataOf(Me) } },
    config: { scope: null },
  }, async (request) => {
    const principal = request.principal;
    const identity = await request.tenantDb((db) => createIdentityRepository(db).describe(principal.userId, principal.apiKeyId));
    if (!identity.user || !identity.organization) throw unauthorized('the user of this token no longer exists');
    return {
      data: {
        kind: principal.kind,
        tenant_id: principal.tenantId,
        scopes: principal.scopes,
        plan: principal.plan ?? identity.organization.plan,
        addons: principal.addons ?? identity.organization.addons,
        user: identity.user,
        api_key: identity.api_key,
        organization: { id: identity.organization.id, name: identity.organization.name },
      },
    };
  });
};
