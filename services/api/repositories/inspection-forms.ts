import type { Queryable } from '../../shared/db.js';
import { badReference } from '../../shared/contracts/errors.js';
import type { Actor } from '../history.js';
import { checkAnswers, type AnswerValue, type TemplateItem } from '../inspection-answers.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { recordEvent } from '../outbox.js';
import { checkReferences } from '../references.js';
import { SqlParams } from '../sql.js';

/** A file already in the file store, as the database describes it. */
export interface StoredImage {
  id: string;
  contentType: string;
  size: number;
  sha256: Buffer;
  storageKey: string;
}

export interface StoredPhoto extends StoredImage {
  /** The template item it answers; null for an attachment of the whole form. */
  itemKey: string | null;
}

export interface InspectionPhoto {
  id: string;
  item_key: string | null;
  content_type: string;
  size: number;
}

export interface InspectionForm {
  id: string;
  template_id: string;
  template_version: number;
  template_name: string;
  items: TemplateItem[];
  work_order_id: string | null;
  asset_id: string | null;
  answers: Record<string, AnswerValue>;
  photos: InspectionPhoto[];
  signed_by: string;
  signed_at: Date;
  signed_ip: string | null;
  signature: { content_type: string; size: number };
  submitted_by: string | null;
  api_key_id: string | null;
  version: number;
  created_at: Date;
  /** A form never changes: its submission time (what its event is dated by). */
  updated_at: Date;
}

export interface Submission {
  id: string;
  template_id: string;
  work_order_id?: string;
  asset_id?: string;
  /** The answers without the photos, which come in `photos`. */
  answers: Record<string, unknown>;
  photos: StoredPhoto[];
  signed_by: string;
  signature: StoredImage;
  ip: string | null;
}

export interface FormFilters {
  template_id?: string;
  work_order_id?: string;
  asset_id?: string;
  submitted_by?: string;
  from?: string;
  to?: string;
}

export const FORM_SORT_FIELDS = ['created_at'] as const;

const PHOTOS = `coalesce((select json_agg(json_build_object('id', p.id, 'item_key', p.item_key, 'content_type', p.content_type, 'size', p.size)
  order by p.position) from inspection_photos p where p.form_id = f.id), '[]')`;
const SELECT = `f.id, f.template_id, f.template_version, f.template_name, f.items, f.work_order_id, f.asset_id, f.answers, ${PHOTOS} as photos,
  f.signed_by, f.created_at as signed_at, host(f.signed_ip) as signed_ip, f.signature_type, f.signature_size, f.submitted_by, f.api_key_id,
  f.version, f.created_at`;

interface FormRow extends Omit<InspectionForm, 'signature' | 'updated_at'> {
  signature_type: string;
  signature_size: number;
}

/** Submitted inspections of the tenant set on `db` (docs/design.md, "Inspections"): written once, never changed. */
export function createInspectionFormRepository(db: Queryable, actor: Actor) {
  const find = async (id: string): Promise<InspectionForm | null> => {
    const { rows } = await db.query<FormRow>({ name: 'fieldops_inspection_find', text: `select ${SELECT} from inspection_forms f where f.id = $1`, values: [id] });
    return rows[0] ? toForm(rows[0]) : null;
  };

  return {
    find,

    list(filters: FormFilters, query: ListQuery): Promise<ListResult<InspectionForm>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.template_id) where.push(`f.template_id = ${params.add(filters.template_id)}`);
      if (filters.work_order_id) where.push(`f.work_order_id = ${params.add(filters.work_order_id)}`);
      if (filters.asset_id) where.push(`f.asset_id = ${params.add(filters.asset_id)}`);
      if (filters.submitted_by) where.push(`f.submitted_by = ${params.add(filters.submitted_by)}`);
      if (filters.from) where.push(`f.created_at >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`f.created_at < ${params.add(filters.to)}`);
      return listPage<FormRow>(db, {
        select: SELECT, from: 'inspection_forms f', where, params, id: 'f.id',
        sortable: { created_at: 'f.created_at' }, defaultSort: '-created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toForm) }));
    },

    /**
     * Records a submission whose files are stored already: checks the links and the answers against
     * the template (read under a share lock, so an edit cannot slip between check and insert), writes
     * the form, its photos and the `inspection.submitted` event in this transaction.
     */
    async submit(input: Submission): Promise<InspectionForm> {
      await checkReferences(db, [
        { path: 'template_id', table: 'inspection_templates', id: input.template_id, what: 'inspection template' },
        { path: 'work_order_id', table: 'work_orders', id: input.work_order_id, what: 'work order' },
        { path: 'asset_id', table: 'assets', id: input.asset_id, what: 'asset' },
      ]);
      const { rows } = await db.query<{ name: string; items: TemplateItem[]; version: number }>(
        'select name, items, version from inspection_templates where id = $1 for share', [input.template_id]);
      const template = rows[0];
      // Deleted since the check above (a form would have held it).
      if (!template) throw badReference('template_id', 'inspection template');
      const photosByItem = new Map<string, string[]>();
      for (const photo of input.photos) {
        if (photo.itemKey !== null) photosByItem.set(photo.itemKey, [...(photosByItem.get(photo.itemKey) ?? []), photo.id]);
      }
      const answers = checkAnswers(template.items, input.answers, photosByItem);
      await db.query(
        `insert into inspection_forms (id, tenant_id, template_id, template_version, template_name, items, work_order_id, asset_id, answers,
           signed_by, signature_key, signature_type, signature_size, signed_ip, submitted_by, api_key_id)
         values ($1, app_tenant(), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [input.id, input.template_id, template.version, template.name, JSON.stringify(template.items), input.work_order_id ?? null,
          input.asset_id ?? null, JSON.stringify(answers), input.signed_by, input.signature.storageKey, input.signature.contentType,
          input.signature.size, input.ip, actor.userId, actor.apiKeyId],
      );
      if (input.photos.length) {
        await db.query(
          `insert into inspection_photos (id, tenant_id, form_id, item_key, position, content_type, size, sha256, storage_key)
           select p.id, app_tenant(), $1, p.item_key, p.position, p.content_type, p.size, p.sha256, p.storage_key
             from unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::int[], $7::bytea[], $8::text[])
                  as p (id, item_key, position, content_type, size, sha256, storage_key)`,
          [input.id, input.photos.map((p) => p.id), input.photos.map((p) => p.itemKey), input.photos.map((_, i) => i),
            input.photos.map((p) => p.contentType), input.photos.map((p) => p.size), input.photos.map((p) => p.sha256),
            input.photos.map((p) => p.storageKey)],
        );
      }
      const form = (await find(input.id))!;
      await recordEvent(db, actor.tenantId, 'inspection.submitted', form, { asset_id: form.asset_id });
      return form;
    },

    /** Where a photo's bytes are, and their type; null when the form has no such photo. */
    async photo(formId: string, photoId: string): Promise<{ storageKey: string; contentType: string; size: number } | null> {
      const { rows } = await db.query<{ storage_key: string; content_type: string; size: number }>(
        'select storage_key, content_type, size from inspection_photos where form_id = $1 and id = $2', [formId, photoId]);
      return rows[0] ? { storageKey: rows[0].storage_key, contentType: rows[0].content_type, size: rows[0].size } : null;
    },

    async signature(formId: string): Promise<{ storageKey: string; contentType: string; size: number } | null> {
      const { rows } = await db.query<{ signature_key: string; signature_type: string; signature_size: number }>(
        'select signature_key, signature_type, signature_size from inspection_forms where id = $1', [formId]);
      return rows[0] ? { storageKey: rows[0].signature_key, contentType: rows[0].signature_type, size: rows[0].signature_size } : null;
    },
  };
}

function toForm(row: FormRow): InspectionForm {
  return {
    id: row.id,
    template_id: row.template_id,
    template_version: row.template_version,
    template_name: row.template_name,
    items: row.items,
    work_order_id: row.work_order_id,
    asset_id: row.asset_id,
    answers: row.answers,
    photos: row.photos,
    signed_by: row.signed_by,
    signed_at: row.signed_at,
    signed_ip: row.signed_ip,
    signature: { content_type: row.signature_type, size: row.signature_size },
    submitted_by: row.submitted_by,
    api_key_id: row.api_key_id,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.created_at,
  };
}

declare module '../outbox.js' {
  interface BusinessEventMap {
    'inspection.submitted': InspectionForm;
  }
}
