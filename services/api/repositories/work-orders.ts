import type { Queryable } from '../../shared/db.js';
import { badRequest, conflict, notFound, type Issue } from '../../shared/contracts/errors.js';
import { createHistory, type Actor, type FieldChanges } from '../history.js';
import type { Image, ImageType } from '../images.js';
import { recordEvent } from '../outbox.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { assertVersion, type Precondition } from '../preconditions.js';
import { checkReferences } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';
import { WORK_ORDER_PRIORITIES, type WorkOrderPriority, type WorkOrderStatus } from '../../shared/contracts/domain.js';
import { applyAction, planEdit, plannedStatus, type HeldFrom, type StatusState, type WorkOrderAction } from '../work-order-states.js';

export interface Signoff {
  signed_by: string;
  signed_at: Date;
  signature: { content_type: ImageType; size: number } | null;
}

export interface WorkOrder {
  id: string;
  title: string;
  description: string | null;
  priority: WorkOrderPriority;
  status: WorkOrderStatus;
  client_id: string | null;
  site_id: string | null;
  asset_id: string | null;
  assignee_id: string | null;
  scheduled_start: Date | null;
  scheduled_end: Date | null;
  notes: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  archived_at: Date | null;
  signoff: Signoff | null;
  created_by: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** What a client writes; `status` and `assignee_id` move along the state machine. */
export interface WorkOrderFields {
  title: string;
  description: string | null;
  priority: WorkOrderPriority;
  client_id: string | null;
  site_id: string | null;
  asset_id: string | null;
  scheduled_start: string | null;
  scheduled_end: string | null;
  notes: string | null;
}

export type WorkOrderEdit = Partial<WorkOrderFields> & { status?: WorkOrderStatus; assignee_id?: string | null };

export interface WorkOrderFilters {
  status?: string;
  assignee_id?: string;
  priority?: WorkOrderPriority;
  client_id?: string;
  site_id?: string;
  asset_id?: string;
  title?: string;
  from?: string;
  to?: string;
  archived?: boolean;
}

/** One change of a work order, as `GET …/history` answers it: the status moved from → to (equal when it stayed). */
export interface WorkOrderChange {
  version: number;
  action: string;
  changed_at: Date;
  changed_by: string | null;
  api_key_id: string | null;
  from: WorkOrderStatus | null;
  to: WorkOrderStatus;
  changes: FieldChanges;
}

export const WORK_ORDER_SORT_FIELDS = ['created_at', 'updated_at', 'scheduled_start', 'priority', 'status', 'title'] as const;

/** The fields whose changes are kept in the history. */
const HISTORY_FIELDS = [
  'title', 'description', 'priority', 'status', 'client_id', 'site_id', 'asset_id', 'assignee_id', 'scheduled_start', 'scheduled_end',
  'notes', 'started_at', 'completed_at', 'cancelled_at', 'archived_at', 'signoff',
] as const;
const EDITABLE = ['title', 'description', 'priority', 'client_id', 'site_id', 'asset_id', 'scheduled_start', 'scheduled_end', 'notes'] as const;

interface WorkOrderRow extends Omit<WorkOrder, 'signoff'> {
  held_from: HeldFrom | null;
  signed_by: string | null;
  signed_at: Date | null;
  signature_type: ImageType | null;
  signature_size: number | null;
}

const SELECT = `w.id, w.title, w.description, w.priority, w.status, w.held_from, w.client_id, w.site_id, w.asset_id, w.assignee_id,
  w.scheduled_start, w.scheduled_end, w.notes, w.started_at, w.completed_at, w.cancelled_at, w.archived_at, w.created_by,
  w.version, w.created_at, w.updated_at, o.signed_by, o.signed_at, o.signature_type, octet_length(o.signature) as signature_size`;
const FROM = 'work_orders w left join work_order_signoffs o on o.work_order_id = w.id';

const FIND = { name: 'fieldops_work_order_find', text: `select ${SELECT} from ${FROM} where w.id = $1` };
const FIND_FOR_UPDATE = { name: 'fieldops_work_order_lock', text: `select ${SELECT} from ${FROM} where w.id = $1 for update of w` };

/** The list's time: the window's start, or the creation of an unscheduled order. */
const WHEN = 'coalesce(w.scheduled_start, w.created_at)';

interface Transition {
  action: string;
  next: StatusState;
  fields?: Partial<WorkOrderFields> & { assignee_id?: string | null };
  /** Time stamps the move sets (`started_at = coalesce(started_at, now())`), fixed text. */
  stamps?: string[];
  signoff?: { signedBy: string; signature: Image | null };
  events: ('work_order.assigned' | 'work_order.started' | 'work_order.completed')[];
}

/**
 * Work orders of the tenant set on `db`, acting for `actor`. Each change locks the order, checks
 * If-Match, writes, then records the history row and the business events in the same transaction.
 */
export function createWorkOrderRepository(db: Queryable, actor: Actor) {
  const history = createHistory(db, 'work_order');

  // Named: prepared once per connection, so a GET does not have the server parse and plan the join anew each time.
  const findRow = async (id: string, forUpdate = false): Promise<WorkOrderRow | null> => {
    const { rows } = await db.query<WorkOrderRow>(forUpdate ? { ...FIND_FOR_UPDATE, values: [id] } : { ...FIND, values: [id] });
    return rows[0] ?? null;
  };

  /** Locks the order for this transaction and checks If-Match; 404 when missing, 409 when archived. */
  const lock = async (id: string, precondition: Precondition | null): Promise<WorkOrderRow> => {
    const row = await findRow(id, true);
    if (!row) throw notFound('work order');
    assertVersion(precondition, row.version, 'work order');
    if (row.archived_at) throw conflict('the work order is archived', [{ path: 'archived_at', message: 'is set' }]);
    return row;
  };

  const checkLinks = (fields: { client_id?: string | null; site_id?: string | null; asset_id?: string | null; assignee_id?: string | null }) =>
    checkReferences(db, [
      { path: 'client_id', table: 'clients', id: fields.client_id, what: 'client' },
      { path: 'site_id', table: 'sites', id: fields.site_id, what: 'site' },
      { path: 'asset_id', table: 'assets', id: fields.asset_id, what: 'asset' },
      { path: 'assignee_id', table: 'employees', id: fields.assignee_id, what: 'employee' },
    ]);

  /** Records the change and its events; `before` null for a creation. */
  const recordChange = async (action: string, before: WorkOrder | null, after: WorkOrder, events: Transition['events']) => {
    await history.record({ action, actor, before, after, fields: HISTORY_FIELDS });
    for (const type of events) await recordEvent(db, actor.tenantId, type, after, { asset_id: after.asset_id, employee_id: after.assignee_id });
  };

  const transition = async (before: WorkOrderRow, change: Transition): Promise<WorkOrder> => {
    const params = new SqlParams();
    const idParam = params.add(before.id);
    const sets = ['updated_at = now()', `status = ${params.add(change.next.status)}`, `held_from = ${params.add(change.next.held_from)}`];
    for (const column of [...EDITABLE, 'assignee_id'] as const) {
      const value = change.fields?.[column];
      if (value !== undefined) sets.push(`${column} = ${params.add(value)}`);
    }
    sets.push(...(change.stamps ?? []));
    await db.query(`update work_orders set ${sets.join(', ')} where id = ${idParam}`, params.values);
    if (change.signoff) {
      const { signedBy, signature } = change.signoff;
      await db.query(
        `insert into work_order_signoffs (work_order_id, tenant_id, signed_by, signature, signature_type, recorded_by)
         values ($1, app_tenant(), $2, $3, $4, $5)`,
        [before.id, signedBy, signature?.bytes ?? null, signature?.contentType ?? null, actor.userId],
      );
    }
    const after = toWorkOrder((await findRow(before.id))!);
    await recordChange(change.action, toWorkOrder(before), after, change.events);
    return after;
  };

  return {
    async find(id: string): Promise<WorkOrder | null> {
      const row = await findRow(id);
      return row ? toWorkOrder(row) : null;
    },

    async list(filters: WorkOrderFilters, query: ListQuery): Promise<ListResult<WorkOrder>> {
      const params = new SqlParams();
      const where: string[] = [filters.archived ? 'w.archived_at is not null' : 'w.archived_at is null'];
      const statusParam = filters.status ? params.add(filters.status.split(',')) : null;
      if (statusParam) where.push(`w.status = any(${statusParam}::text[])`);
      for (const column of ['assignee_id', 'priority', 'client_id', 'site_id', 'asset_id'] as const) {
        if (filters[column]) where.push(`w.${column} = ${params.add(filters[column])}`);
      }
      if (filters.title) where.push(`w.title ilike ${params.add(containsPattern(filters.title))}`);
      if (filters.from) where.push(`${WHEN} >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`${WHEN} < ${params.add(filters.to)}`);
      // Filtered by status and archived state only (the default list among them): the total is summed
      // from the kept counts (migration 013) instead of counted over every order.
      const countKept = where.length === (statusParam ? 2 : 1);
      const totalSql = countKept ? `(select coalesce(sum(c.n), 0)::int from work_order_counts c
          where c.archived = ${filters.archived ? 'true' : 'false'}${statusParam ? ` and c.status = any(${statusParam}::text[])` : ''})` : undefined;
      return listPage<WorkOrderRow, WorkOrder>(db, {
        select: SELECT,
        from: FROM,
        where,
        params,
        id: 'w.id',
        sortable: {
          created_at: 'w.created_at',
          updated_at: 'w.updated_at',
          scheduled_start: `coalesce(w.scheduled_start, 'infinity')`,
          priority: `array_position(array['${WORK_ORDER_PRIORITIES.join("','")}'], w.priority)`,
          status: 'w.status',
          title: 'lower(w.title)',
        },
        defaultSort: '-created_at',
        totalSql,
      }, query, toWorkOrder);
    },

    /** A new order is draft, scheduled when it has a window, assigned when it names an assignee. */
    async create(fields: WorkOrderFields & { assignee_id: string | null }): Promise<WorkOrder> {
      await checkLinks(fields);
      checkWindow(fields.scheduled_start, fields.scheduled_end);
      const status: WorkOrderStatus = fields.assignee_id ? 'assigned' : plannedStatus(fields.scheduled_start);
      const { rows } = await db.query<{ id: string }>(
        `insert into work_orders (tenant_id, title, description, priority, status, client_id, site_id, asset_id, assignee_id,
                                  scheduled_start, scheduled_end, notes, created_by)
         values (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning id`,
        [fields.title, fields.description, fields.priority, status, fields.client_id, fields.site_id, fields.asset_id, fields.assignee_id,
          fields.scheduled_start, fields.scheduled_end, fields.notes, actor.userId],
      );
      const order = toWorkOrder((await findRow(rows[0]!.id))!);
      await recordChange('created', null, order, []);
      await recordEvent(db, actor.tenantId, 'work_order.created', order, { asset_id: order.asset_id, employee_id: order.assignee_id });
      if (order.assignee_id) await recordEvent(db, actor.tenantId, 'work_order.assigned', order, { asset_id: order.asset_id, employee_id: order.assignee_id });
      return order;
    },

    /** A PATCH: fields, and `status` / `assignee_id` along the state machine (work-order-states.ts). */
    async update(id: string, edit: WorkOrderEdit, precondition: Precondition | null): Promise<WorkOrder> {
      const before = await lock(id, precondition);
      const { status, assignee_id, ...fields } = edit;
      await checkLinks({ ...fields, assignee_id });
      const start = fields.scheduled_start !== undefined ? fields.scheduled_start : before.scheduled_start;
      checkWindow(start, fields.scheduled_end !== undefined ? fields.scheduled_end : before.scheduled_end);
      const plan = planEdit(before, { status, assignee_id, scheduledStartAfter: start });
      return transition(before, {
        action: plan.action,
        next: plan.next,
        fields: { ...fields, ...(assignee_id !== undefined ? { assignee_id } : {}) },
        stamps: stampsFor(plan.next.status),
        events: [
          ...(plan.assigned ? ['work_order.assigned' as const] : []),
          ...(plan.action === 'start' ? ['work_order.started' as const] : []),
        ],
      });
    },

    /** The actions (`POST …/assign|dispatch|start|hold|resume|cancel`); `complete` has its own. */
    async act(id: string, action: Exclude<WorkOrderAction, 'complete'>, input: { employee_id?: string }, precondition: Precondition | null): Promise<WorkOrder> {
      const before = await lock(id, precondition);
      const next = applyAction(action, before);
      if (action === 'assign') await checkLinks({ assignee_id: input.employee_id });
      return transition(before, {
        action,
        next,
        fields: action === 'assign' ? { assignee_id: input.employee_id! } : undefined,
        stamps: stampsFor(next.status),
        events: action === 'assign' ? ['work_order.assigned'] : action === 'start' ? ['work_order.started'] : [],
      });
    },

    async complete(id: string, signoff: { signedBy: string; signature: Image | null }, precondition: Precondition | null): Promise<WorkOrder> {
      const before = await lock(id, precondition);
      const next = applyAction('complete', before);
      return transition(before, { action: 'complete', next, stamps: stampsFor(next.status), signoff, events: ['work_order.completed'] });
    },

    /** DELETE: archived, not removed (its history and events stay); archiving twice changes nothing. */
    async archive(id: string, precondition: Precondition | null): Promise<boolean> {
      const before = await findRow(id, true);
      if (!before) return false;
      assertVersion(precondition, before.version, 'work order');
      if (before.archived_at) return true;
      await transition(before, { action: 'archived', next: before, stamps: ['archived_at = now()'], events: [] });
      return true;
    },

    /** Every change: who, when, the status from → to, and what else changed; oldest first by default. */
    async history(id: string, query: ListQuery): Promise<ListResult<WorkOrderChange> | null> {
      if (!(await findRow(id))) return null;
      const page = await history.list<WorkOrder>(id, { ...query, sort: query.sort ?? (query.cursor ? undefined : 'version') });
      return {
        ...page,
        data: page.data.map((entry) => ({
          version: entry.version,
          action: entry.action,
          changed_at: entry.changed_at,
          changed_by: entry.changed_by,
          api_key_id: entry.api_key_id,
          from: (entry.changes.status ? entry.changes.status.from : entry.snapshot.status) as WorkOrderStatus | null,
          to: entry.snapshot.status,
          changes: entry.changes,
        })),
      };
    },

    async signature(id: string): Promise<{ contentType: string; bytes: Buffer } | null> {
      const { rows } = await db.query<{ signature_type: string; signature: Buffer }>(
        'select signature_type, signature from work_order_signoffs where work_order_id = $1 and signature is not null', [id]);
      return rows[0] ? { contentType: rows[0].signature_type, bytes: rows[0].signature } : null;
    },
  };
}

export type WorkOrderRepository = ReturnType<typeof createWorkOrderRepository>;

declare module '../outbox.js' {
  interface BusinessEventMap {
    'work_order.created': WorkOrder;
    'work_order.assigned': WorkOrder;
    'work_order.started': WorkOrder;
    'work_order.completed': WorkOrder;
  }
}

/** The time stamps a status sets the first time it is reached. */
function stampsFor(status: WorkOrderStatus): string[] {
  if (status === 'in_progress') return ['started_at = coalesce(started_at, now())'];
  if (status === 'completed') return ['completed_at = now()'];
  if (status === 'cancelled') return ['cancelled_at = now()'];
  return [];
}

function checkWindow(start: Date | string | null | undefined, end: Date | string | null | undefined): void {
  const issues: Issue[] = [];
  if (end && !start) issues.push({ path: 'scheduled_start', message: 'is required with scheduled_end' });
  if (start && end && new Date(end).getTime() < new Date(start).getTime()) issues.push({ path: 'scheduled_end', message: 'must not be before scheduled_start' });
  if (issues.length) throw badRequest('the scheduled window is not valid', issues);
}

function toWorkOrder(row: WorkOrderRow): WorkOrder {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    priority: row.priority,
    status: row.status,
    client_id: row.client_id,
    site_id: row.site_id,
    asset_id: row.asset_id,
    assignee_id: row.assignee_id,
    scheduled_start: row.scheduled_start,
    scheduled_end: row.scheduled_end,
    notes: row.notes,
    started_at: row.started_at,
    completed_at: row.completed_at,
    cancelled_at: row.cancelled_at,
    archived_at: row.archived_at,
    signoff: row.signed_by === null
      ? null
      : {
          signed_by: row.signed_by,
          signed_at: row.signed_at!,
          signature: row.signature_type ? { content_type: row.signature_type, size: row.signature_size ?? 0 } : null,
        },
    created_by: row.created_by,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
