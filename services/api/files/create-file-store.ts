import type { Config } from '../../shared/config.js';
import type { FileStore } from './file-store.js';
import { localFileStore } from './local-file-store.js';

/** The store FILE_STORAGE names. The S3 client is loaded only when used (its import alone costs ~0.4 s of CPU at start). */
export async function createFileStore(config: Config): Promise<FileStore> {
  if (config.FILE_STORAGE === 's3') {
    const { s3FileStore } = await import('./s3-file-store.js');
    return s3FileStore({
      bucket: config.S3_BUCKET!,
      region: config.S3_REGION,
      endpoint: config.S3_ENDPOINT,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      prefix: config.S3_PREFIX,
      credentials: config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
        : undefined,
    });
  }
  return localFileStore(config.DATA_DIR);
}
