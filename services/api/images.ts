import { badRequest } from '../shared/contracts/errors.js';

/**
 * Signatures and photos (docs/design.md, "REST conventions"): PNG or JPEG, decided by their bytes — never by a declared
 * type or a file name — and at most 10 MiB each.
 */

export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
/** A JSON body carrying one image as a data URL: base64 (4/3) plus room for the other fields. */
export const IMAGE_BODY_LIMIT_BYTES = Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 1024 * 1024;

export type ImageType = 'image/png' | 'image/jpeg';

export interface Image {
  contentType: ImageType;
  bytes: Buffer;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The type the bytes really are, or null when neither PNG nor JPEG. */
export function sniffImage(bytes: Buffer): ImageType | null {
  if (bytes.length >= PNG_SIGNATURE.length && bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) return 'image/png';
  // SOI then the first marker's 0xFF.
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

/** Checks bytes received as they are (multipart); throws 400 naming `path`. */
export function checkImage(bytes: Buffer, path: string): Image {
  if (bytes.length > MAX_IMAGE_BYTES) throw badRequest('the image is too large', [{ path, message: `must be at most ${MAX_IMAGE_BYTES} bytes` }]);
  const contentType = sniffImage(bytes);
  if (!contentType) throw badRequest('the image is not a PNG or JPEG', [{ path, message: 'must be a PNG or JPEG image' }]);
  return { contentType, bytes };
}

const DATA_URL = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes `data:<type>;base64,<bytes>` and checks the bytes; throws 400 naming `path`. */
export function parseImageDataUrl(value: string, path: string): Image {
  const header = DATA_URL.exec(value);
  if (!header) throw badRequest('the image must be a base64 data URL', [{ path, message: 'must be data:image/png;base64,… or data:image/jpeg;base64,…' }]);
  const encoded = value.slice(header[0].length).replace(/\s+/g, '');
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw badRequest('the image is not valid base64', [{ path, message: 'is not valid base64' }]);
  }
  // Refused before decoding, so an oversized upload costs no decode.
  if ((encoded.length / 4) * 3 - (encoded.endsWith('==') ? 2 : encoded.endsWith('=') ? 1 : 0) > MAX_IMAGE_BYTES) {
    throw badRequest('the image is too large', [{ path, message: `must be at most ${MAX_IMAGE_BYTES} bytes` }]);
  }
  return checkImage(Buffer.from(encoded, 'base64'), path);
}
