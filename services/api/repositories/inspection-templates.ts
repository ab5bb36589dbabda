import type { Queryable } from '../../shared/db.js';
import { badRequest, type Issue } from '../../shared/contracts/errors.js';
import { RESERVED_KEYS, type TemplateItem } from '../inspection-answers.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { stillReferenced } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';

export interface InspectionTemplate {
  id: string;
  name: string;
  description: string | null;
  items: TemplateItem[];
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface TemplateItemInput {
  key: string;
  label: string;
  type: TemplateItem['type'];
  required?: boolean;
}

export interface TemplateFields {
  name?: string;
  description?: string | null;
  items?: TemplateItemInput[];
}

export const TEMPLATE_SORT_FIELDS = ['created_at', 'updated_at', 'name'] as const;

const SELECT = 't.id, t.name, t.description, t.items, t.version, t.created_at, t.updated_at';

/**
 * Inspection templates of the tenant set on `db`: checklists. Editing one bumps its version; forms
 * already submitted keep the items they were answered against.
 */
export function createInspectionTemplateRepository(db: Queryable) {
  const find = async (id: string): Promise<InspectionTemplate | null> => {
    const { rows } = await db.query<InspectionTemplate>(`select ${SELECT} from inspection_templates t where t.id = $1`, [id]);
    return rows[0] ?? null;
  };

  return {
    find,

    list(filters: { name?: string }, query: ListQuery): Promise<ListResult<InspectionTemplate>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.name) where.push(`t.name ilike ${params.add(containsPattern(filters.name))}`);
      return listPage<InspectionTemplate>(db, {
        select: SELECT, from: 'inspection_templates t', where, params, id: 't.id',
        sortable: { created_at: 't.created_at', updated_at: 't.updated_at', name: 't.name' }, defaultSort: 'created_at',
      }, query);
    },

    async create(fields: TemplateFields & { name: string; items: TemplateItemInput[] }): Promise<InspectionTemplate> {
      const { rows } = await db.query<InspectionTemplate>(
        `insert into inspection_templates as t (tenant_id, name, description, items) values (app_tenant(), $1, $2, $3) returning ${SELECT}`,
        [fields.name, fields.description ?? null, JSON.stringify(normalizeItems(fields.items))],
      );
      return rows[0]!;
    },

    async update(id: string, changes: TemplateFields, precondition: Precondition | null): Promise<InspectionTemplate | null> {
      if (!(await checkIfMatch(db, 'inspection_templates', id, precondition, 'inspection template'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      if (changes.name !== undefined) sets.push(`name = ${params.add(changes.name)}`);
      if (changes.description !== undefined) sets.push(`description = ${params.add(changes.description)}`);
      if (changes.items !== undefined) sets.push(`items = ${params.add(JSON.stringify(normalizeItems(changes.items)))}`);
      const { rows } = await db.query<InspectionTemplate>(
        `update inspection_templates t set ${sets.join(', ')} where t.id = ${idParam} returning ${SELECT}`, params.values);
      return rows[0] ?? null;
    },

    /** A template that forms were submitted against stays (409): the forms name it. */
    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'inspection_templates', id, precondition, 'inspection template'))) return false;
      const { rowCount } = await db.query('delete from inspection_templates where id = $1', [id])
        .catch((err: unknown) => stillReferenced(err, 'inspection template', 'submitted inspection forms'));
      return rowCount === 1;
    },
  };
}

/** Items with `required` spelled out (default true); keys unique and not a multipart field name of its own. */
function normalizeItems(items: readonly TemplateItemInput[]): TemplateItem[] {
  const issues: Issue[] = [];
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.key)) issues.push({ path: `items.${index}.key`, message: 'is used by another item' });
    if ((RESERVED_KEYS as readonly string[]).includes(item.key)) issues.push({ path: `items.${index}.key`, message: `is reserved (${RESERVED_KEYS.join(', ')})` });
    seen.add(item.key);
  });
  if (issues.length) throw badRequest('the template\'s items are not valid', issues);
  return items.map((item) => ({ key: item.key, label: item.label, type: item.type, required: item.required ?? true }));
}
