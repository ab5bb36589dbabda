/**
 * Where uploaded files live (inspection photos and signatures; docs/design.md, "Inspections"): one
 * interface, two implementations — the local disk under `DATA_DIR` (default) and any S3-compatible
 * object store (`FILE_STORAGE=s3`). The database keeps each file's key, type, size and hash; the store
 * keeps the bytes. Keys are built by the API from tenant and object ids only, never from client input.
 */
export interface FileStore {
  readonly kind: 'local' | 's3';
  put(key: string, bytes: Buffer, contentType: string): Promise<void>;
  /** The bytes, or null when there is no such file. */
  get(key: string): Promise<Buffer | null>;
  /** Removes files (missing ones are no error): uploads of a request that failed or was a replay. */
  delete(keys: readonly string[]): Promise<void>;
  close(): void;
}

/** Keys are `/`-separated segments of letters, digits, `-`, `_` and `.` (no `..`): safe as paths and object keys. */
export function checkKey(key: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/.test(key) || key.includes('..')) {
    throw new Error(`not a file key: ${key}`);
  }
  return key;
}
