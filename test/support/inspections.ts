import { bearer } from './api.js';

/** A checklist with one item of each type; `front` and `damage` take photos, `damage` optional. */
export const CHECKLIST = {
  name: 'Pre-start check',
  items: [
    { key: 'brakes_ok', label: 'Brakes work', type: 'check' },
    { key: 'hours', label: 'Hour meter', type: 'number' },
    { key: 'remarks', label: 'Remarks', type: 'text', required: false },
    { key: 'front', label: 'Photo of the front', type: 'photo' },
    { key: 'damage', label: 'Photos of any damage', type: 'photo', required: false },
  ],
};

export interface FilePart {
  field: string;
  bytes: Buffer;
  filename?: string;
  /** What the client claims; the server goes by the bytes. */
  type?: string;
}

/** Submits an inspection as `multipart/form-data` over real HTTP: the `form` field (JSON) plus files. */
export async function submitMultipart(base: string, token: string, form: object, files: FilePart[], headers: Record<string, string> = {}) {
  const body = new FormData();
  body.append('form', JSON.stringify(form));
  for (const file of files) {
    body.append(file.field, new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'application/octet-stream' }), file.filename ?? `${file.field}.bin`);
  }
  const res = await fetch(`${base}/v1/inspection-forms`, { method: 'POST', headers: { ...bearer(token), ...headers }, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** GETs bytes over real HTTP. */
export async function fetchBytes(base: string, token: string, path: string) {
  const res = await fetch(`${base}${path}`, { headers: bearer(token) });
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}
