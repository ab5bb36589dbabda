import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../services/shared/config.js';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { dataUrl, jpegBytes, pngBytes } from '../support/images.js';
import { CHECKLIST, fetchBytes, submitMultipart } from '../support/inspections.js';

/**
 * The same submissions with the photos in an S3-compatible object store: s3rver (from npm), started
 * here in-process on a free port, reached through @aws-sdk/client-s3 exactly as AWS or MinIO would be.
 */
const BUCKET = 'fieldops-photos';
const PREFIX = 'test/';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let s3dir: string;
let s3server: S3rver;
let s3: S3Client;
let db: TestDatabase;
let api: TestApi;
let base: string;
let org: TestOrg;
let token: string;
let templateId: string;

beforeAll(async () => {
  s3dir = mkdtempSync(join(tmpdir(), 'fieldops-s3-'));
  s3server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = await s3server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
  db = await createTestDatabase({
    FILE_STORAGE: 's3', S3_BUCKET: BUCKET, S3_ENDPOINT: endpoint, S3_FORCE_PATH_STYLE: 'true', S3_PREFIX: PREFIX,
    S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  });
  api = await buildTestApi(db.config);
  base = await api.listen();
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
  const created = await fetch(`${base}/v1/inspection-templates`, {
    method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify(CHECKLIST),
  });
  templateId = ((await created.json()) as { data: { id: string } }).data.id;
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
  s3?.destroy();
  await s3server?.close();
  if (s3dir) rmSync(s3dir, { recursive: true, force: true });
});

async function objectKeys(): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (listed.Contents ?? []).map((o) => o.Key!).sort();
}

const answers = { brakes_ok: false, hours: 87, remarks: 'ok' };

describe('photos in an S3-compatible store', () => {
  it('a multipart submission with two photos is read back byte for byte, from objects in the bucket', async () => {
    const front = jpegBytes(300 * 1024);
    const dent = pngBytes(64 * 1024);
    const signature = pngBytes(512);
    const res = await submitMultipart(base, token, { template_id: templateId, answers, signed_by: 'Robin' }, [
      { field: 'front', bytes: front, type: 'image/jpeg' },
      { field: 'damage', bytes: dent, type: 'image/png' },
      { field: 'signature', bytes: signature, type: 'image/png' },
    ]);
    expect(res.status, res.text).toBe(201);
    const form = JSON.parse(res.text).data;
    expect(form.photos.map((p: { item_key: string; size: number }) => [p.item_key, p.size])).toEqual([['front', front.length], ['damage', dent.length]]);

    for (const [photo, bytes] of [[form.photos[0], front], [form.photos[1], dent]] as const) {
      const got = await fetchBytes(base, token, `/v1/inspection-forms/${form.id}/photos/${photo.id}`);
      expect(got.status).toBe(200);
      expect(got.bytes.equals(bytes)).toBe(true);
    }
    expect((await fetchBytes(base, token, `/v1/inspection-forms/${form.id}/signature`)).bytes.equals(signature)).toBe(true);

    // The bytes really are objects of the bucket, under the prefix, by tenant and form.
    const key = `${PREFIX}${org.id}/inspection-forms/${form.id}/${form.photos[0].id}`;
    expect(await objectKeys()).toEqual(expect.arrayContaining([key, `${PREFIX}${org.id}/inspection-forms/${form.id}/signature`]));
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(object.ContentType).toBe('image/jpeg');
    expect(Buffer.from(await object.Body!.transformToByteArray()).equals(front)).toBe(true);
  });

  it('JSON with data URLs works the same; a refused submission leaves no object behind', async () => {
    const photo = pngBytes(2048);
    const ok = await fetch(`${base}/v1/inspection-forms`, {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify({ template_id: templateId, answers: { ...answers, front: dataUrl(photo) }, signed_by: 'Robin', signature: dataUrl(pngBytes(10)) }),
    });
    expect(ok.status).toBe(201);
    const form = ((await ok.json()) as { data: { id: string; photos: { id: string }[] } }).data;
    expect((await fetchBytes(base, token, `/v1/inspection-forms/${form.id}/photos/${form.photos[0]!.id}`)).bytes.equals(photo)).toBe(true);

    const before = await objectKeys();
    const refused = await submitMultipart(base, token, { template_id: templateId, answers: { ...answers, hours: 'lots' }, signed_by: 'Robin' }, [
      { field: 'front', bytes: pngBytes(4096) },
      { field: 'damage', bytes: jpegBytes(4096) },
      { field: 'signature', bytes: pngBytes(10) },
    ]);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text).error.issues).toEqual([{ path: 'answers.hours', message: 'must be a number' }]);
    expect(await objectKeys()).toEqual(before);
  });
});

describe('configuration', () => {
  it('FILE_STORAGE=s3 needs a bucket, and S3 credentials come in pairs', () => {
    expect(() => loadConfig({ JWT_SECRET: 'x'.repeat(32), FILE_STORAGE: 's3' })).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_SECRET: 'x'.repeat(32), FILE_STORAGE: 's3', S3_BUCKET: 'bucket', S3_ACCESS_KEY_ID: 'k' })).toThrow(/go together/);
    expect(() => loadConfig({ JWT_SECRET: 'x'.repeat(32), FILE_STORAGE: 'ftp' })).toThrow(ConfigError);
    expect(loadConfig({ JWT_SECRET: 'x'.repeat(32) }).FILE_STORAGE).toBe('local');
  });
});
