import multipart from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import { badRequest, notFound } from '../../shared/contracts/errors.js';
import { actorOf } from '../history.js';
import { IMAGE_BODY_LIMIT_BYTES, MAX_IMAGE_BYTES } from '../images.js';
import { MAX_PHOTOS, receiveJson, receiveMultipart, UploadSession, type FormInput, type ReceivedSubmission } from '../inspection-uploads.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createInspectionFormRepository, FORM_SORT_FIELDS } from '../repositories/inspection-forms.js';
import { dataOf, IdParams, Nullable, TimeRangeQuery, Timestamp, Uuid, Version } from '../schemas.js';
import { TemplateItem } from './inspection-templates.js';

/** A JSON submission carries its photos as data URLs: room for a few full-size ones (more go multipart). */
const JSON_BODY_LIMIT_BYTES = 48 * 1024 * 1024;
/** A multipart submission: every photo and the signature at their limit, plus the form field. */
const MULTIPART_LIMIT_BYTES = (MAX_PHOTOS + 1) * (MAX_IMAGE_BYTES + 64 * 1024) + IMAGE_BODY_LIMIT_BYTES;

const Photo = Type.Object({
  id: Uuid(),
  item_key: Nullable(Type.String({ description: 'The photo item it answers; null for an attachment of the whole form' })),
  content_type: Type.String(),
  size: Type.Integer(),
}, { description: 'The bytes: GET /v1/inspection-forms/{id}/photos/{photo_id}' });

const Form = Type.Object({
  id: Uuid(),
  template_id: Uuid(),
  template_version: Type.Integer({ description: 'The template\'s version the answers were checked against' }),
  template_name: Type.String(),
  items: Type.Array(TemplateItem, { description: 'The template\'s items as they were answered' }),
  work_order_id: Nullable(Uuid()),
  asset_id: Nullable(Uuid()),
  answers: Type.Record(Type.String(), Type.Unknown(), { description: 'Item key → answer; a photo item\'s answer is the list of its photo ids' }),
  photos: Type.Array(Photo),
  signed_by: Type.String(),
  signed_at: Timestamp(),
  signed_ip: Nullable(Type.String()),
  signature: Type.Object({ content_type: Type.String(), size: Type.Integer() }, { description: 'The image: GET /v1/inspection-forms/{id}/signature' }),
  submitted_by: Nullable(Uuid()),
  api_key_id: Nullable(Uuid()),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp({ description: 'The same as created_at: a submitted form never changes' }),
});

const FormFields = {
  template_id: Uuid(),
  work_order_id: Type.Optional(Uuid()),
  asset_id: Type.Optional(Uuid()),
  answers: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Item key → answer: a boolean (check), a string (text), a number, or for a photo item a data URL or a list of them',
  }),
  signed_by: Type.String({ minLength: 1, maxLength: 200 }),
};
const SignatureDataUrl = Type.String({ description: 'data:image/png;base64,… or data:image/jpeg;base64,… (at most 10 MiB)' });
const JsonSubmission = Type.Object({ ...FormFields, signature: SignatureDataUrl }, { additionalProperties: false });
/** The `form` field of a multipart submission: the signature may be a file instead. */
const MultipartForm = Type.Object({ ...FormFields, signature: Type.Optional(SignatureDataUrl) }, { additionalProperties: false });

/**
 * Documents the multipart body. It constrains nothing: the parts are read as they stream in (before
 * validation, services/api/inspection-uploads.ts), and the body the later hooks see is their digest.
 */
const MultipartBody = Type.Unsafe<undefined>({
  properties: {
    form: { description: 'The submission as JSON (as the JSON body; the signature may be a file instead)' },
    signature: { description: 'The signature image (a file)' },
    photos: { description: 'Photos of the form as a whole (files, repeatable)' },
  },
  description: `A \`form\` field plus files: \`signature\`, \`photos\`, and the photos of each photo item named after its key (repeatable); `
    + `at most ${MAX_PHOTOS} photos of at most 10 MiB each, PNG or JPEG`,
});

const FormQuery = listQuerySchema(FORM_SORT_FIELDS, {
  template_id: Type.Optional(Uuid()),
  work_order_id: Type.Optional(Uuid()),
  asset_id: Type.Optional(Uuid()),
  submitted_by: Type.Optional(Uuid({ description: 'The user who submitted it' })),
  ...TimeRangeQuery,
});

const PhotoParams = Type.Object({ id: Uuid(), photo_id: Uuid() });

/** Submitted inspections with photos and a signature (DESIGN section 6; docs/design.md, "Inspections"). */
export const inspectionFormRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['inspections'];
  const read = { scope: 'inspections.read' };
  const write = { scope: 'inspections.write' };

  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: MAX_IMAGE_BYTES, files: MAX_PHOTOS + 1, fields: 1, fieldSize: IMAGE_BODY_LIMIT_BYTES, parts: MAX_PHOTOS + 2, headerPairs: 100 },
  });
  const validateForm = app.validatorCompiler!({ schema: MultipartForm, method: 'POST', url: '/inspection-forms', httpPart: 'body' });
  const parseForm = (text: string): FormInput => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw badRequest('the form field is not JSON', [{ path: 'form', message: 'must be the submission as JSON' }]);
    }
    const valid = validateForm(value);
    if (valid !== true) {
      const errors = (validateForm as unknown as { errors?: { instancePath?: string }[] }).errors ?? [];
      throw Object.assign(new Error('the form is not valid'), {
        validation: errors.map((e) => ({ ...e, instancePath: `/form${e.instancePath ?? ''}` })), validationContext: 'body',
      });
    }
    return value as FormInput;
  };

  /** A submission's files, stored before the transaction; removed unless the form was recorded. */
  const uploads = new WeakMap<FastifyRequest, { session: UploadSession; received?: ReceivedSubmission; recorded: boolean }>();

  app.post('/inspection-forms', {
    schema: {
      tags,
      summary: 'Submit an inspection: answers, photos and a signature, as JSON (data URLs) or multipart/form-data',
      description: 'Answers are checked against the template; photos and the signature are PNG or JPEG by content, at most 10 MiB each. '
        + 'Emits `inspection.submitted`.',
      body: { content: { 'application/json': { schema: JsonSubmission }, 'multipart/form-data': { schema: MultipartBody } } } as unknown as typeof JsonSubmission,
      response: { 201: dataOf(Form) },
    },
    config: { ...write, idempotent: true },
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    onRequest: async (request) => {
      // Refused before a byte of the body is read (a body without a length meets the per-file limits).
      const length = Number(request.headers['content-length'] ?? 0);
      const limit = request.isMultipart() ? MULTIPART_LIMIT_BYTES : JSON_BODY_LIMIT_BYTES;
      if (length > limit) throw Object.assign(badRequest(`the body is larger than ${limit} bytes`, [{ path: 'body', message: 'is too large' }]), { statusCode: 413 });
      uploads.set(request, { session: new UploadSession(app.files, request.principal.tenantId), recorded: false });
    },
    // A multipart body is read here, so that the Idempotency-Key (claimed next) fingerprints what it holds.
    preValidation: async (request) => {
      if (!request.isMultipart()) return;
      const upload = uploads.get(request)!;
      upload.received = await receiveMultipart(request, upload.session, parseForm);
      (request as { body: unknown }).body = digestOf(upload.received);
    },
    // Before the answer leaves: a failed submission, or a replay answered from its first time, keeps none of its files.
    onSend: async (request, _reply, payload) => {
      const upload = uploads.get(request);
      if (upload && !upload.recorded) await upload.session.discard();
      return payload;
    },
  }, async (request, reply) => {
    const upload = uploads.get(request)!;
    const received = upload.received ?? await receiveJson(request.body as Static<typeof JsonSubmission>, upload.session);
    return reply.commit(201, async (db) => {
      const form = await createInspectionFormRepository(db, actorOf(request.principal)).submit({
        id: upload.session.formId,
        template_id: received.form.template_id,
        work_order_id: received.form.work_order_id,
        asset_id: received.form.asset_id,
        answers: received.form.answers,
        photos: received.photos,
        signed_by: received.form.signed_by,
        signature: received.signature,
        ip: request.ip,
      });
      upload.recorded = true;
      return { data: form };
    });
  });

  app.get('/inspection-forms', {
    schema: { tags, summary: 'List submitted inspections, newest first', querystring: FormQuery, response: { 200: listOf(Form) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createInspectionFormRepository(db, actorOf(request.principal)).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/inspection-forms/:id', {
    schema: { tags, summary: 'Get a submitted inspection', params: IdParams, response: { 200: dataOf(Form) } },
    config: read,
  }, async (request) => {
    const form = await request.tenantDb((db) => createInspectionFormRepository(db, actorOf(request.principal)).find(request.params.id));
    if (!form) throw notFound('inspection form');
    return { data: form };
  });

  app.get('/inspection-forms/:id/photos/:photo_id', {
    schema: { tags, summary: 'A photo\'s bytes (PNG or JPEG)', params: PhotoParams },
    config: read,
  }, async (request, reply) => {
    const photo = await request.tenantDb((db) => createInspectionFormRepository(db, actorOf(request.principal)).photo(request.params.id, request.params.photo_id));
    if (!photo) throw notFound('photo');
    return sendFile(reply, photo, await app.files.get(photo.storageKey));
  });

  app.get('/inspection-forms/:id/signature', {
    schema: { tags, summary: 'The signature image (PNG or JPEG)', params: IdParams },
    config: read,
  }, async (request, reply) => {
    const signature = await request.tenantDb((db) => createInspectionFormRepository(db, actorOf(request.principal)).signature(request.params.id));
    if (!signature) throw notFound('inspection form');
    return sendFile(reply, signature, await app.files.get(signature.storageKey));
  });
};

/** What a multipart submission held, as the body the Idempotency-Key fingerprints: the form and each file's hash. */
function digestOf(received: ReceivedSubmission): object {
  return {
    form: received.form,
    files: received.photos.map((p) => ({ item_key: p.itemKey, sha256: p.sha256.toString('hex') })),
    signature: received.signature.sha256.toString('hex'),
  };
}

/** Files never change once stored, so a client may keep them; a record whose bytes are gone is an error of ours, not a 404. */
function sendFile(reply: FastifyReply, file: { contentType: string; storageKey: string }, bytes: Buffer | null) {
  if (!bytes) throw new Error(`file ${file.storageKey} is missing from the file store`);
  return reply.type(file.contentType).header('cache-control', 'private, max-age=86400, immutable').header('x-content-type-options', 'nosniff').send(bytes);
}
