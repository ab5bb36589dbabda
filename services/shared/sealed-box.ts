import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export interface SealedBox {
  /** `iv (12) | tag (16) | ciphertext`, AES-256-GCM. */
  seal(text: string): Buffer;
  /** Throws when the bytes were not sealed under this key and purpose (or were altered). */
  open(sealed: Buffer): string;
}

/**
 * Secrets the platform must use again (a webhook's signing secret, a stored answer that shows a token)
 * are kept sealed, not hashed: AES-256-GCM under a key derived from an operator secret with HKDF, one
 * key per `purpose`, so that one sealed value can never be opened as another kind.
 */
export function sealedBox(secret: string, purpose: string): SealedBox {
  const key = Buffer.from(hkdfSync('sha256', secret, 'fieldops', purpose, 32));
  return {
    seal(text) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    open(sealed) {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      decipher.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}
