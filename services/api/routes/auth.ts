import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SessionTokens } from '../../shared/jwt.js';
import { DUMMY_PASSWORD_HASH, verifyPassword } from '../../shared/secrets.js';
import { rateLimited, unauthorized } from '../../shared/contracts/errors.js';
import type { LoginAttempts } from '../../shared/login-attempts.js';
import { createUserRepository, type LoginCandidate } from '../repositories/users.js';
import { dataOf, Timestamp } from '../schemas.js';

const TokenRequest = Type.Object({
  email: Type.String({ minLength: 3, maxLength: 320 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
  // Any letter case; no `urn:uuid:` or braces, which `format: uuid` would let through.
  organization_id: Type.String({
    format: 'uuid', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$',
    description: 'The organization (tenant) to sign in to; the token carries its canonical (lowercase) spelling',
  }),
}, { additionalProperties: false });

const TokenResponse = dataOf(Type.Object({
  token: Type.String({ description: 'A session JWT; send it as `Authorization: Bearer <token>`' }),
  token_type: Type.Literal('Bearer'),
  expires_at: Timestamp(),
}));

export const authRoutes: FastifyPluginAsyncTypebox<{ tokens: SessionTokens; attempts: LoginAttempts }> = async (app, { tokens, attempts }) => {
  app.post('/auth/token', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in: a session token for a user of one organization',
      body: TokenRequest,
      response: { 200: TokenResponse },
    },
    config: { public: true },
  }, async (request, reply) => {
    const { email, password } = request.body;
    // One spelling per organization (docs/design.md, "REST API"): the token, the tenant's rate limit and
    // this count all use the canonical id, so case variants of a UUID are not fresh guesses.
    const tenantId = request.body.organization_id.toLowerCase();
    // Failed attempts only, per email and organization, shared by every API process: guessing a password
    // costs a minute per few tries, while an integration that signs in often is never locked out.
    const attemptKey = `${tenantId}:${email.toLowerCase()}`;
    const claim = await attempts.claim(attemptKey);
    if (!claim.allowed) {
      reply.header('retry-after', claim.retryAfterS);
      throw rateLimited(`too many failed sign-ins for this email; retry in ${claim.retryAfterS} s`);
    }
    let candidate: LoginCandidate | null;
    try {
      candidate = await app.withTenant(tenantId, (db) => createUserRepository(db).findForLogin(email));
    } catch (err) {
      // No password was tried (the database failed: a 503): the attempt is given back.
      await attempts.release(attemptKey);
      throw err;
    }
    // The hash is checked even for unknown emails, so the answer's timing does not tell which exist.
    const passwordOk = await verifyPassword(password, candidate?.password_hash ?? DUMMY_PASSWORD_HASH);
    if (!candidate || !passwordOk || candidate.disabled) throw unauthorized('wrong email, password or organization');
    await attempts.release(attemptKey);
    const { token, expiresAt } = tokens.sign(
      { sub: candidate.id, tid: tenantId, role: candidate.role, scopes: candidate.scopes, sv: candidate.session_epoch },
      candidate.token_ttl_s,
    );
    return { data: { token, token_type: 'Bearer' as const, expires_at: expiresAt } };
  });
};
