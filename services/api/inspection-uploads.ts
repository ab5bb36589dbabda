import { createHash, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { badRequest } from '../shared/contracts/errors.js';
import type { FileStore } from './files/file-store.js';
import { takeDataUrlPhotos } from './inspection-answers.js';
import { checkImage, parseImageDataUrl, type Image } from './images.js';
import type { StoredImage, StoredPhoto } from './repositories/inspection-forms.js';

/**
 * An inspection submission's files (docs/design.md, "Inspections"): photos and the signature arrive as
 * data URLs in a JSON body, or as files of a `multipart/form-data` body beside its `form` field. Each is
 * checked (PNG or JPEG by its bytes, at most 10 MiB) and put in the file store as it arrives — a
 * multipart body is never held whole in memory — before the database transaction, which then only
 * records them. If the submission fails, or turns out to be a replay, the files are removed again.
 */

export const MAX_PHOTOS = 20;

/** What a submission says besides its files (the `form` field of a multipart body, or the JSON body). */
export interface FormInput {
  template_id: string;
  work_order_id?: string;
  asset_id?: string;
  answers: Record<string, unknown>;
  signed_by: string;
  /** A data URL; in a multipart body it may come as a `signature` file instead. */
  signature?: string;
}

export interface ReceivedSubmission {
  form: FormInput;
  photos: StoredPhoto[];
  signature: StoredImage;
}

/** The files one submission has put in the store, under `<tenant>/inspection-forms/<form id>/`. */
export class UploadSession {
  readonly formId = randomUUID();
  private readonly keys: string[] = [];
  private readonly photos: StoredPhoto[] = [];

  constructor(private readonly files: FileStore, private readonly tenantId: string) {}

  async putPhoto(image: Image, itemKey: string | null): Promise<void> {
    if (this.photos.length >= MAX_PHOTOS) {
      throw badRequest('too many photos', [{ path: itemKey ? `answers.${itemKey}` : 'photos', message: `a form takes at most ${MAX_PHOTOS}` }]);
    }
    const id = randomUUID();
    this.photos.push({ ...(await this.put(id, image)), itemKey });
  }

  async putSignature(image: Image): Promise<StoredImage> {
    return this.put('signature', image);
  }

  storedPhotos(): StoredPhoto[] {
    return [...this.photos];
  }

  /** Removes every file this session stored (best effort: a leftover is an orphan, never a wrong answer). */
  async discard(): Promise<void> {
    await this.files.delete(this.keys).catch(() => {});
  }

  private async put(name: string, image: Image): Promise<StoredImage> {
    const storageKey = `${this.tenantId}/inspection-forms/${this.formId}/${name}`;
    this.keys.push(storageKey);
    await this.files.put(storageKey, image.bytes, image.contentType);
    return {
      id: name,
      contentType: image.contentType,
      size: image.bytes.length,
      sha256: createHash('sha256').update(image.bytes).digest(),
      storageKey,
    };
  }
}

/** A JSON submission: photos are the data URLs among the answers. */
export async function receiveJson(body: FormInput, session: UploadSession): Promise<ReceivedSubmission> {
  if (body.signature === undefined) throw badRequest('the signature is missing', [{ path: 'signature', message: 'is required' }]);
  return finish(body, null, session);
}

/**
 * A multipart submission: a `form` field (the JSON of a submission), files named after photo items
 * (repeatable), `photos` files for the form as a whole, and the `signature` file (or `form.signature`).
 * Files are taken one at a time as they stream in; the first problem stops reading.
 */
export async function receiveMultipart(request: FastifyRequest, session: UploadSession, parseForm: (text: string) => FormInput): Promise<ReceivedSubmission> {
  let form: FormInput | null = null;
  let signature: Image | null = null;
  for await (const part of request.parts()) {
    if (part.type === 'field') {
      if (part.fieldname !== 'form') throw badRequest(`unknown field ${part.fieldname}`, [{ path: part.fieldname, message: 'is not a field of this form (files are named after their item)' }]);
      if (form) throw badRequest('the form field is given twice', [{ path: 'form', message: 'must be given once' }]);
      form = parseForm(String(part.value));
      continue;
    }
    const bytes = await part.toBuffer();
    if (part.fieldname === 'signature') {
      if (signature) throw badRequest('two signatures', [{ path: 'signature', message: 'must be given once' }]);
      signature = checkImage(bytes, 'signature');
    } else {
      await session.putPhoto(checkImage(bytes, part.fieldname), part.fieldname === 'photos' ? null : part.fieldname);
    }
  }
  if (!form) throw badRequest('the form field is missing', [{ path: 'form', message: 'is required: the submission as JSON' }]);
  if (signature && form.signature !== undefined) throw badRequest('two signatures', [{ path: 'signature', message: 'give it as a file or in the form, not both' }]);
  if (!signature && form.signature === undefined) throw badRequest('the signature is missing', [{ path: 'signature', message: 'is required: a file, or form.signature' }]);
  return finish(form, signature, session);
}

/** Takes the data-URL photos out of the answers and stores them and the signature. */
async function finish(form: FormInput, signatureFile: Image | null, session: UploadSession): Promise<ReceivedSubmission> {
  const { answers, photos } = takeDataUrlPhotos(form.answers);
  for (const [key, urls] of photos) {
    for (const [index, url] of urls.entries()) {
      await session.putPhoto(parseImageDataUrl(url, urls.length > 1 ? `answers.${key}.${index}` : `answers.${key}`), key);
    }
  }
  const signature = await session.putSignature(signatureFile ?? parseImageDataUrl(form.signature!, 'signature'));
  return { form: { ...form, answers }, photos: session.storedPhotos(), signature };
}
