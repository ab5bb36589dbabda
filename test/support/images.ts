import { randomBytes } from 'node:crypto';

/** A real 1×1 PNG; `padding` random bytes after its end make files of any size that are still PNGs by their bytes. */
const ONE_PIXEL_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

export const pngBytes = (padding = 0): Buffer => Buffer.concat([ONE_PIXEL_PNG, randomBytes(padding)]);

/** JPEG by its bytes: SOI, an APP0 marker, then anything. */
export const jpegBytes = (size = 2048): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(Math.max(0, size - 4))]);

export const dataUrl = (bytes: Buffer, type = 'image/png'): string => `data:${type};base64,${bytes.toString('base64')}`;
