import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../shared/config.js';
import type { SessionTokens } from '../../shared/jwt.js';
import { DUMMY_PASSWORD_HASH, verifyPassword } from '../../shared/secrets.js';
import { rateLimited, unauthorized } from '../../shared/contracts/errors.js';
import { createUserRepository } from '../repositories/users.js';
import { dataOf, Timestamp, Uuid } from '../schemas.js';

const TokenRequest = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 320 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  organization_id: Uuid({ description: 'The organization (tenant) to sign in to' }),
}, { additionalProperties: false });

const TokenResponse = dataOf(Type.Object({
  token: Type.String({ description: 'A session JWT; send it as `Authorization: Bearer <token>`' }),
  token_type: Type.Literal('Bearer'),
  expires_at: Timestamp(),
}));

export const authRoutes: FastifyPluginAsyncTypebox<{ config: Config; tokens: SessionTokens }> = async (app, { config, tokens }) => {
  // Failed attempts only, per email and organization, shared by every API process: guessing a password
  // costs a minute per few tries, while an integration that signs in often is never locked out.
  const failedLogins = app.createRateLimit({
    max: config.LOGIN_ATTEMPTS_PER_MIN,
    timeWindow: 60_000,
    allowList: [],
    keyGenerator: (request) => {
      const body = request.body as { email: string; organization_id: string };
      return `login:${body.organization_id}:${body.email.toLowerCase()}`;
    },
  });

  app.post('/auth/token', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in: a session token for a user of one organization',
      body: TokenRequest,
      response: { 200: TokenResponse },
    },
    config: { public: true },
  }, async (request, reply) => {
    const attempts = await failedLogins(request, { increment: false });
    if (!attempts.isAllowed && attempts.remaining === 0) {
      reply.header('retry-after', attempts.ttlInSeconds);
      throw rateLimited(`too many failed sign-ins for this email; retry in ${attempts.ttlInSeconds} s`);
    }
    const { email, password, organization_id: tenantId } = request.body;
    const candidate = await app.withTenant(tenantId, (db) => createUserRepository(db).findForLogin(email));
    // The hash is checked even for unknown emails, so the answer's timing does not tell which exist.
    const passwordOk = await verifyPassword(password, candidate?.password_hash ?? DUMMY_PASSWORD_HASH);
    if (!candidate || !passwordOk || candidate.disabled) {
      await failedLogins(request);
      throw unauthorized('wrong email, password or organization');
    }
    const { token, expiresAt } = tokens.sign(
      { sub: candidate.id, tid: tenantId, role: candidate.role, scopes: candidate.scopes },
      candidate.token_ttl_s,
    );
    return { data: { token, token_type: 'Bearer' as const, expires_at: expiresAt } };
  });
};
