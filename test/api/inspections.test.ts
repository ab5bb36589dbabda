import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { dataUrl, jpegBytes, pngBytes } from '../support/images.js';
import { CHECKLIST, fetchBytes, submitMultipart } from '../support/inspections.js';

let db: TestDatabase;
let api: TestApi;
let base: string;
let org: TestOrg;
let token: string;
let templateId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  base = await api.listen();
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
  templateId = (await inject('POST', '/v1/inspection-templates', CHECKLIST)).json().data.id;
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
function inject(method: Method, url: string, payload?: object, headers: Record<string, string> = {}, as = token) {
  return api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });
}

const signature = pngBytes(100);
const answers = (extra: object = {}) => ({ brakes_ok: true, hours: 1234.5, remarks: 'Slight oil leak', ...extra });
const jsonForm = (extra: object = {}) => ({
  template_id: templateId, answers: answers({ front: dataUrl(jpegBytes(3000), 'image/jpeg') }), signed_by: 'Sam Inspector', signature: dataUrl(signature), ...extra,
});

/** Writes `text` on a plain socket and returns what arrives until the server has answered one response. */
function rawRequest(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer; got ${JSON.stringify(received)}`)));
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      const headerEnd = received.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(received)?.[1];
      if (headerEnd >= 0 && length && received.length >= headerEnd + 4 + Number(length)) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', reject);
  });
}

/** Every file the local store holds for this test file's deployment. */
function storedFiles(): string[] {
  const root = join(db.config.DATA_DIR, 'files');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('templates', () => {
  it('CRUD: items with a key, a label, a type and required (default true); versions on edit', async () => {
    const res = await inject('POST', '/v1/inspection-templates', { name: 'Crane check', items: [{ key: 'hook', label: 'Hook latch', type: 'check' }] });
    expect(res.statusCode).toBe(201);
    const template = res.json().data;
    expect(template).toMatchObject({ name: 'Crane check', version: 1, items: [{ key: 'hook', label: 'Hook latch', type: 'check', required: true }] });
    const edited = await inject('PATCH', `/v1/inspection-templates/${template.id}`, { items: [{ key: 'hook', label: 'Hook latch', type: 'check', required: false }] }, { 'if-match': '"1"' });
    expect(edited.json().data).toMatchObject({ version: 2, items: [{ required: false }] });
    expect((await inject('PATCH', `/v1/inspection-templates/${template.id}`, { name: 'x' }, { 'if-match': '"1"' })).statusCode).toBe(409);
    expect((await inject('GET', '/v1/inspection-templates?name=crane')).json().data.map((t: { id: string }) => t.id)).toEqual([template.id]);
    expect((await inject('DELETE', `/v1/inspection-templates/${template.id}`)).statusCode).toBe(204);
  });

  it('refuses malformed items', async () => {
    for (const items of [
      [],
      [{ key: 'a', label: 'A', type: 'signature' }],
      [{ key: 'a', label: 'A', type: 'check' }, { key: 'a', label: 'Again', type: 'text' }],
      [{ key: 'photos', label: 'Reserved', type: 'photo' }],
      [{ key: '1bad key', label: 'A', type: 'check' }],
      [{ key: 'a', type: 'check' }],
    ]) {
      const res = await inject('POST', '/v1/inspection-templates', { name: 'Bad', items });
      expect(res.statusCode, JSON.stringify(items)).toBe(400);
    }
  });
});

describe('submitting a form', () => {
  it('as JSON with data URLs: answers kept, photos listed and readable, the signature stored', async () => {
    const front = jpegBytes(5000);
    const dents = [pngBytes(10), pngBytes(20)];
    const res = await inject('POST', '/v1/inspection-forms', jsonForm({ answers: answers({ front: dataUrl(front, 'image/jpeg'), damage: dents.map((d) => dataUrl(d)) }) }));
    expect(res.statusCode, res.body).toBe(201);
    const form = res.json().data;
    expect(form).toMatchObject({
      template_id: templateId, template_version: 1, template_name: 'Pre-start check', signed_by: 'Sam Inspector', signed_ip: '127.0.0.1',
      signature: { content_type: 'image/png', size: signature.length }, work_order_id: null, asset_id: null, version: 1,
      answers: { brakes_ok: true, hours: 1234.5, remarks: 'Slight oil leak' },
    });
    expect(form.photos).toEqual([
      { id: expect.any(String), item_key: 'front', content_type: 'image/jpeg', size: front.length },
      { id: expect.any(String), item_key: 'damage', content_type: 'image/png', size: dents[0]!.length },
      { id: expect.any(String), item_key: 'damage', content_type: 'image/png', size: dents[1]!.length },
    ]);
    expect(form.answers.front).toEqual([form.photos[0].id]);
    expect(form.answers.damage).toEqual([form.photos[1].id, form.photos[2].id]);

    for (const [photo, bytes] of [[form.photos[0], front], [form.photos[2], dents[1]]] as const) {
      const got = await fetchBytes(base, token, `/v1/inspection-forms/${form.id}/photos/${photo.id}`);
      expect(got.status).toBe(200);
      expect(got.type).toBe(photo.content_type);
      expect(got.bytes.equals(bytes)).toBe(true);
    }
    expect((await fetchBytes(base, token, `/v1/inspection-forms/${form.id}/signature`)).bytes.equals(signature)).toBe(true);
    expect((await inject('GET', `/v1/inspection-forms/${form.id}`)).json().data).toEqual(form);
    expect((await inject('GET', `/v1/inspection-forms/${form.id}/photos/${randomUUID()}`)).statusCode).toBe(404);
  });

  it('as multipart: the form field plus two photo files, read back byte for byte from the local disk', async () => {
    const order = (await inject('POST', '/v1/work-orders', { title: 'Service crane' })).json().data;
    const asset = (await inject('POST', '/v1/assets', { name: 'Crane 3', model: 'LTM 1050' })).json().data;
    const first = jpegBytes(200 * 1024);
    const second = pngBytes(150 * 1024);
    const res = await submitMultipart(base, token,
      { template_id: templateId, work_order_id: order.id, asset_id: asset.id, answers: answers(), signed_by: 'Sam' },
      [
        // The declared types are wrong on purpose: the server goes by the bytes.
        { field: 'front', bytes: first, filename: 'front.png', type: 'image/png' },
        { field: 'photos', bytes: second, filename: 'overview.jpg', type: 'image/jpeg' },
        { field: 'signature', bytes: signature, filename: 'sig.png', type: 'image/png' },
      ]);
    expect(res.status, res.text).toBe(201);
    const form = JSON.parse(res.text).data;
    expect(form).toMatchObject({ work_order_id: order.id, asset_id: asset.id, signature: { content_type: 'image/png', size: signature.length } });
    expect(form.photos).toEqual([
      { id: expect.any(String), item_key: 'front', content_type: 'image/jpeg', size: first.length },
      { id: expect.any(String), item_key: null, content_type: 'image/png', size: second.length },
    ]);
    const [a, b] = await Promise.all(form.photos.map((p: { id: string }) => fetchBytes(base, token, `/v1/inspection-forms/${form.id}/photos/${p.id}`)));
    expect(a!.bytes.equals(first)).toBe(true);
    expect(b!.bytes.equals(second)).toBe(true);
    // On the local disk under DATA_DIR, one file per photo, named by tenant, form and photo.
    const onDisk = join(db.config.DATA_DIR, 'files', org.id, 'inspection-forms', form.id, form.photos[0].id);
    expect(readFileSync(onDisk).equals(first)).toBe(true);

    const listed = (await inject('GET', `/v1/inspection-forms?work_order_id=${order.id}`)).json();
    expect(listed.data.map((f: { id: string }) => f.id)).toEqual([form.id]);
    expect((await inject('GET', `/v1/inspection-forms?asset_id=${asset.id}`)).json().meta.total).toBe(1);
  });

  it('checks the answers against the template: required items, types, unknown keys', async () => {
    const res = await inject('POST', '/v1/inspection-forms', jsonForm({
      answers: { brakes_ok: 'yes', remarks: 42, colour: 'red', damage: 'not a photo' },
    }));
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual(expect.arrayContaining([
      { path: 'answers.colour', message: 'is not an item of the template' },
      { path: 'answers.brakes_ok', message: 'must be true or false' },
      { path: 'answers.hours', message: 'is required' },
      { path: 'answers.remarks', message: 'must be a string' },
      { path: 'answers.front', message: 'is required (a photo)' },
      { path: 'answers.damage', message: expect.stringContaining('must be a photo') },
    ]));
    const photoOnText = await inject('POST', '/v1/inspection-forms', jsonForm({ answers: answers({ front: dataUrl(pngBytes()), remarks: dataUrl(pngBytes()) }) }));
    expect(errorOf(photoOnText).issues).toEqual([{ path: 'answers.remarks', message: 'is a text item, not a photo' }]);
    const missingTemplate = await inject('POST', '/v1/inspection-forms', jsonForm({ template_id: randomUUID() }));
    expect(errorOf(missingTemplate).issues).toEqual([{ path: 'template_id', message: 'no inspection template with this id' }]);
    expect((await inject('POST', '/v1/inspection-forms', jsonForm({ signed_by: '' }))).statusCode).toBe(400);
    const { signature: _omitted, ...unsigned } = jsonForm();
    expect(errorOf(await inject('POST', '/v1/inspection-forms', unsigned)).issues.map((i) => i.path)).toEqual(['signature']);
  });

  it('photos and signatures must be PNG or JPEG by their bytes, at most 10 MiB; a refused form leaves no file behind', async () => {
    const before = storedFiles().length;
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1');
    const cases: [object, string][] = [
      [jsonForm({ signature: dataUrl(gif, 'image/png') }), 'signature'],
      [jsonForm({ answers: answers({ front: dataUrl(gif, 'image/jpeg') }) }), 'answers.front'],
      [jsonForm({ answers: answers({ front: 'data:image/png;base64,@@@' }) }), 'answers.front'],
      // A valid photo, then an invalid one: the first is stored, then removed again.
      [jsonForm({ answers: answers({ front: dataUrl(pngBytes()), damage: [dataUrl(pngBytes()), dataUrl(gif)] }) }), 'answers.damage.1'],
      // Files stored, then the answers refused.
      [jsonForm({ answers: answers({ hours: 'many' }) }), 'answers.hours'],
    ];
    // Files stored, then the database refuses the text: still no file left.
    const nul = await inject('POST', '/v1/inspection-forms', jsonForm({ answers: answers({ remarks: 'oil\u0000leak' }) }));
    expect(nul.statusCode).toBe(400);
    expect(errorOf(nul).code).toBe('bad_request');
    for (const [body, path] of cases) {
      const res = await inject('POST', '/v1/inspection-forms', body);
      expect(res.statusCode, path).toBe(400);
      expect(errorOf(res).issues.map((i) => i.path), path).toContain(path);
    }
    const tooBig = await submitMultipart(base, token, { template_id: templateId, answers: answers(), signed_by: 'Sam' }, [
      { field: 'front', bytes: pngBytes(10 * 1024 * 1024) },
      { field: 'signature', bytes: signature },
    ]);
    expect(tooBig.status).toBe(413);
    expect(JSON.parse(tooBig.text).error).toMatchObject({ code: 'bad_request', request_id: expect.any(String) });
    const notAnImage = await submitMultipart(base, token, { template_id: templateId, answers: answers(), signed_by: 'Sam' }, [
      { field: 'front', bytes: pngBytes() },
      { field: 'signature', bytes: Buffer.from('%PDF-1.7'), type: 'image/png' },
    ]);
    expect(notAnImage.status).toBe(400);
    expect(JSON.parse(notAnImage.text).error.issues).toEqual([{ path: 'signature', message: 'must be a PNG or JPEG image' }]);
    expect(storedFiles().length).toBe(before);
  });

  it('refuses a huge body by its length before reading it, and malformed multipart in the error shape', async () => {
    // Only the headers are sent: the answer must come without the server waiting for 500 MB.
    for (const type of ['multipart/form-data; boundary=x', 'application/json']) {
      const answer = await rawRequest(base, [
        'POST /v1/inspection-forms HTTP/1.1', `Host: ${new URL(base).host}`, `Authorization: Bearer ${token}`,
        `Content-Type: ${type}`, 'Content-Length: 500000000', '', '',
      ].join('\r\n'));
      expect(answer, type).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(answer.slice(answer.indexOf('{'))).error).toMatchObject({ code: 'bad_request', issues: [{ path: 'body', message: 'is too large' }] });
    }
    const noForm = await submitMultipart(base, token, {}, []).then(async () => {
      const body = new FormData();
      body.append('front', new Blob([new Uint8Array(pngBytes())]), 'front.png');
      const res = await fetch(`${base}/v1/inspection-forms`, { method: 'POST', headers: bearer(token), body });
      return { status: res.status, body: await res.json() as { error: { issues: { path: string }[] } } };
    });
    expect(noForm.status).toBe(400);
    expect(noForm.body.error.issues.map((i) => i.path)).toEqual(['form']);
    const badJson = await (async () => {
      const body = new FormData();
      body.append('form', '{not json');
      const res = await fetch(`${base}/v1/inspection-forms`, { method: 'POST', headers: bearer(token), body });
      return { status: res.status, body: await res.json() as { error: { issues: { path: string }[] } } };
    })();
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.issues).toEqual([{ path: 'form', message: 'must be the submission as JSON' }]);
    const badForm = await submitMultipart(base, token, { template_id: 'nope', answers: [], signed_by: 'S', extra: 1 }, [{ field: 'signature', bytes: signature }]);
    expect(badForm.status).toBe(400);
    expect(JSON.parse(badForm.text).error.issues.map((i: { path: string }) => i.path)).toEqual(expect.arrayContaining(['form.template_id', 'form.answers', 'form.extra']));
  });

  it('a template edited later does not change forms submitted against it', async () => {
    const template = (await inject('POST', '/v1/inspection-templates', { name: 'Short', items: [{ key: 'ok', label: 'OK?', type: 'check' }] })).json().data;
    const form = (await inject('POST', '/v1/inspection-forms', { template_id: template.id, answers: { ok: true }, signed_by: 'S', signature: dataUrl(signature) })).json().data;
    await inject('PATCH', `/v1/inspection-templates/${template.id}`, { items: [{ key: 'ok2', label: 'Still OK?', type: 'text' }] });
    expect((await inject('GET', `/v1/inspection-forms/${form.id}`)).json().data).toMatchObject({
      template_version: 1, items: [{ key: 'ok', label: 'OK?', type: 'check', required: true }], answers: { ok: true },
    });
    // A template with forms stays.
    expect((await inject('DELETE', `/v1/inspection-templates/${template.id}`)).statusCode).toBe(409);
  });
});

describe('tenancy, scopes and retries', () => {
  it('another tenant\'s forms, photos and templates are 404', async () => {
    const form = (await inject('POST', '/v1/inspection-forms', jsonForm())).json().data;
    const theirs = await login(api, await createOrg(db.owner, 'unlimited'));
    for (const url of [`/v1/inspection-forms/${form.id}`, `/v1/inspection-forms/${form.id}/photos/${form.photos[0].id}`,
      `/v1/inspection-forms/${form.id}/signature`, `/v1/inspection-templates/${templateId}`]) {
      expect((await inject('GET', url, undefined, {}, theirs)).statusCode, url).toBe(404);
    }
    expect((await inject('GET', '/v1/inspection-forms', undefined, {}, theirs)).json().meta.total).toBe(0);
    const res = await inject('POST', '/v1/inspection-forms', jsonForm(), {}, theirs);
    expect(errorOf(res).issues).toEqual([{ path: 'template_id', message: 'no inspection template with this id' }]);
  });

  it('technicians submit; viewers read but cannot submit', async () => {
    const asRole = async (role: string) => {
      const email = `${role}-${randomUUID()}@example.com`;
      await inject('POST', '/v1/users', { email, password: 'long enough pw', role });
      return login(api, org, email, 'long enough pw');
    };
    const technician = await asRole('technician');
    expect((await inject('POST', '/v1/inspection-forms', jsonForm(), {}, technician)).statusCode).toBe(201);
    const viewer = await asRole('viewer');
    expect((await inject('GET', '/v1/inspection-forms', undefined, {}, viewer)).statusCode).toBe(200);
    expect((await inject('POST', '/v1/inspection-forms', jsonForm(), {}, viewer)).statusCode).toBe(403);
    expect((await submitMultipart(base, viewer, { template_id: templateId }, [{ field: 'front', bytes: pngBytes() }])).status).toBe(403);
    expect((await inject('POST', '/v1/inspection-templates', CHECKLIST, {}, technician)).statusCode).toBe(201);
  });

  it('a repeated multipart submission with the same Idempotency-Key records one form and keeps no extra files', async () => {
    const key = randomUUID();
    const photo = pngBytes(1000);
    const submit = (bytes = photo) => submitMultipart(base, token, { template_id: templateId, answers: answers(), signed_by: 'Sam' },
      [{ field: 'front', bytes }, { field: 'signature', bytes: signature }], { 'idempotency-key': key });
    const first = await submit();
    expect(first.status).toBe(201);
    const filesAfterFirst = storedFiles().length;
    const again = await submit();
    // Replays are byte for byte, and the second upload's files are gone again.
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(first.text);
    expect(storedFiles().length).toBe(filesAfterFirst);
    // The key fingerprints the files too: the same key with another photo is another request.
    const other = await submit(pngBytes(1000));
    expect(other.status).toBe(409);
    expect(JSON.parse(other.text).error.issues).toEqual([{ path: 'Idempotency-Key', message: 'was used for a different request' }]);
    expect(storedFiles().length).toBe(filesAfterFirst);
  });
});
