import { createHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions } from 'node:crypto';

/**
 * Device tokens and API keys are long random secrets: a fast SHA-256 is enough to store them and lets
 * the secret alone find its row. User passwords are short and guessable: scrypt, salted, slow.
 */
export function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

const API_KEY_PREFIX = 'fo_';

/**
 * `fo_` + the tenant id (22 base64url chars) + 43 chars of secret. Carrying the tenant lets the key be
 * looked up under that tenant's row-level security; a forged tenant part simply matches no hash.
 */
export function newApiKey(tenantId: string): string {
  return API_KEY_PREFIX + Buffer.from(tenantId.replaceAll('-', ''), 'hex').toString('base64url') + randomSecret(32);
}

export function apiKeyTenant(key: string): string | null {
  if (!key.startsWith(API_KEY_PREFIX) || key.length !== API_KEY_PREFIX.length + 22 + 43) return null;
  const hex = Buffer.from(key.slice(3, 25), 'base64url').toString('hex');
  if (hex.length !== 32) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const isApiKey = (token: string): boolean => token.startsWith(API_KEY_PREFIX);

/** What lists show of a key, so that a person can tell keys apart. */
export const apiKeyDisplayPrefix = (key: string): string => key.slice(0, 11);

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };

function scryptAsync(password: BinaryLike, salt: BinaryLike, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash`, self-describing so that the cost can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keyLength } = SCRYPT;
  const hash = await scryptAsync(password, salt, keyLength, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return timingSafeEqual(actual, expected);
}

/** A fixed hash to verify against when the user does not exist, so timing does not reveal emails. */
export const DUMMY_PASSWORD_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
