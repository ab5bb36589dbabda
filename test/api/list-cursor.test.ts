import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../services/api/pagination.js';
import { ApiError } from '../../services/shared/contracts/errors.js';

/** `next_cursor` of list pages: what the API hands out comes back as it was; anything else is a 400, never a 500. */
describe('list cursors', () => {
  it('come back as they were made', () => {
    const value = { s: '-created_at', v: '2025-05-09T12:00:00.000Z', i: '0e9c6c8a-4d4c-4c55-9d0a-8f0f2f6b1a11' };
    expect(decodeCursor(encodeCursor(value))).toEqual(value);
  });

  it('that the API did not make are a bad request naming the cursor', () => {
    const forged = [
      '', 'not base64 at all!', Buffer.from('{').toString('base64url'), Buffer.from('null').toString('base64url'),
      Buffer.from(JSON.stringify({ s: 'name', v: 1, i: 'x' })).toString('base64url'),
      Buffer.from(JSON.stringify({ s: 'name', v: 'a' })).toString('base64url'),
    ];
    for (const cursor of forged) {
      let error: unknown;
      try {
        decodeCursor(cursor);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ApiError);
      expect(error).toMatchObject({ code: 'bad_request', statusCode: 400, issues: [{ path: 'cursor' }] });
    }
  });
});
