import { createSigner, createVerifier } from 'fast-jwt';

/** What a user's session token carries. */
export interface SessionClaims {
  sub: string;
  tid: string;
  role: string;
  scopes: string[];
  /**
   * The user's session epoch when the token was signed (migration 011): a token is accepted only while
   * the user still has it. Tokens signed before epochs existed carry none and count as 0.
   */
  sv?: number;
}

export interface SessionTokens {
  sign(claims: SessionClaims, ttlS: number): { token: string; expiresAt: Date };
  /** Throws for a bad signature, a wrong algorithm or an expired token. */
  verify(token: string): SessionClaims & { exp: number };
}

const ISSUER = 'fieldops';

export function sessionTokens(secret: string): SessionTokens {
  const verifier = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: ISSUER, cache: 1000 });
  return {
    sign(claims, ttlS) {
      const signer = createSigner({ key: secret, algorithm: 'HS256', iss: ISSUER, expiresIn: ttlS * 1000 });
      const token = signer({ ...claims });
      return { token, expiresAt: new Date(Math.floor(Date.now() / 1000 + ttlS) * 1000) };
    },
    verify(token) {
      const payload = verifier(token) as SessionClaims & { exp: number };
      if (typeof payload.tid !== 'string' || typeof payload.sub !== 'string' || !Array.isArray(payload.scopes)) {
        throw new Error('token claims incomplete');
      }
      return payload;
    },
  };
}
