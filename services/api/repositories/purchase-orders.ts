import type { Queryable } from '../../shared/db.js';
import { badRequest, conflict, type Issue } from '../../shared/contracts/errors.js';
import type { Actor } from '../history.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { assertVersion, type Precondition } from '../preconditions.js';
import { checkReferences } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';
import { createInventoryRepository, type Movement } from './inventory.js';

/**
 * Purchase orders of the tenant set on `db` (docs/design.md, "Inventory"): parts bought for a warehouse
 *
 *   draft ──order──▶ ordered ──receive──▶ partially_received ──receive──▶ received
 *     └──────────────┴────────cancel (what is not received yet is no longer expected)────▶ cancelled
 *
 * A receipt books each line's units into stock as a `receive` movement at the order's price, through
 * the same movement path as any other (so the weighted-average cost and the log are one), in the
 * transaction that updates the order.
 */

export const PURCHASE_ORDER_STATUSES = ['draft', 'ordered', 'partially_received', 'received', 'cancelled'] as const;
export type PurchaseOrderStatus = (typeof PURCHASE_ORDER_STATUSES)[number];

export interface PurchaseLineInput {
  item_id: string;
  quantity: number;
  unit_cost: number;
}

export interface PurchaseLine extends PurchaseLineInput {
  received_quantity: number;
  subtotal: number;
}

export interface PurchaseOrder {
  id: string;
  number: number;
  supplier: string;
  warehouse_id: string;
  status: PurchaseOrderStatus;
  lines: PurchaseLine[];
  total: number;
  notes: string | null;
  ordered_at: Date | null;
  received_at: Date | null;
  cancelled_at: Date | null;
  created_by: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface PurchaseOrderFields {
  supplier?: string;
  warehouse_id?: string;
  lines?: PurchaseLineInput[];
  notes?: string | null;
}

export interface PurchaseOrderFilters {
  status?: PurchaseOrderStatus;
  supplier?: string;
  warehouse_id?: string;
  from?: string;
  to?: string;
}

export const PURCHASE_ORDER_SORT_FIELDS = ['created_at', 'number', 'total'] as const;

const SELECT = `p.id, p.number, p.supplier, p.warehouse_id, p.status, p.lines, p.total, p.notes, p.ordered_at, p.received_at, p.cancelled_at,
  p.created_by, p.version, p.created_at, p.updated_at`;

type Row = Omit<PurchaseOrder, 'number' | 'total'> & { number: string; total: string };

export function createPurchaseOrderRepository(db: Queryable, actor: Actor) {
  const find = async (id: string): Promise<PurchaseOrder | null> => {
    const { rows } = await db.query<Row>(`select ${SELECT} from purchase_orders p where p.id = $1`, [id]);
    return rows[0] ? toOrder(rows[0]) : null;
  };

  /** Locks the order and checks If-Match and that it is in one of `from`; null when there is none. */
  const lock = async (id: string, precondition: Precondition | null, action: string, from: readonly PurchaseOrderStatus[]): Promise<PurchaseOrder | null> => {
    const { rows } = await db.query<Row>(`select ${SELECT} from purchase_orders p where p.id = $1 for update`, [id]);
    if (!rows[0]) return null;
    const order = toOrder(rows[0]);
    assertVersion(precondition, order.version, 'purchase order');
    if (!from.includes(order.status)) {
      throw conflict(`a ${order.status.replace('_', ' ')} purchase order cannot be ${action}`, [
        { path: 'status', message: `is ${order.status}; ${action} needs ${from.join(' or ')}` },
      ]);
    }
    return order;
  };

  const checkLinks = async (fields: PurchaseOrderFields) => {
    const lines = fields.lines ?? [];
    await checkReferences(db, [
      { path: 'warehouse_id', table: 'warehouses', id: fields.warehouse_id, what: 'warehouse' },
      ...lines.map((line, i) => ({ path: `lines.${i}.item_id`, table: 'inventory_items' as const, id: line.item_id, what: 'inventory item' })),
    ]);
  };

  const setStatus = async (id: string, status: PurchaseOrderStatus, stamp: string | null, lines?: PurchaseLine[]) => {
    const params = new SqlParams();
    const sets = [`status = ${params.add(status)}`, 'updated_at = now()'];
    if (stamp) sets.push(`${stamp} = now()`);
    if (lines) sets.push(`lines = ${params.add(JSON.stringify(lines))}`);
    await db.query(`update purchase_orders set ${sets.join(', ')} where id = ${params.add(id)}`, params.values);
    return (await find(id))!;
  };

  return {
    find,

    list(filters: PurchaseOrderFilters, query: ListQuery): Promise<ListResult<PurchaseOrder>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.status) where.push(`p.status = ${params.add(filters.status)}`);
      if (filters.supplier) where.push(`p.supplier ilike ${params.add(containsPattern(filters.supplier))}`);
      if (filters.warehouse_id) where.push(`p.warehouse_id = ${params.add(filters.warehouse_id)}`);
      if (filters.from) where.push(`p.created_at >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`p.created_at < ${params.add(filters.to)}`);
      return listPage<Row>(db, {
        select: SELECT, from: 'purchase_orders p', where, params, id: 'p.id',
        sortable: { created_at: 'p.created_at', number: 'p.number', total: 'p.total' }, defaultSort: '-created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toOrder) }));
    },

    async create(fields: PurchaseOrderFields & { supplier: string; warehouse_id: string; lines: PurchaseLineInput[] }): Promise<PurchaseOrder> {
      const lines = planLines(fields.lines, []);
      await checkLinks(fields);
      const { rows } = await db.query<{ id: string }>(
        `with n as (
           insert into tenant_counters as c (tenant_id, name, value) values (app_tenant(), 'purchase_order', 1)
           on conflict (tenant_id, name) do update set value = c.value + 1 returning value)
         insert into purchase_orders (tenant_id, number, supplier, warehouse_id, lines, total, notes, created_by)
         select app_tenant(), n.value, $1, $2, $3, $4, $5, $6 from n returning id`,
        [fields.supplier, fields.warehouse_id, JSON.stringify(lines), totalOf(lines), fields.notes ?? null, actor.userId],
      );
      return (await find(rows[0]!.id))!;
    },

    async update(id: string, changes: PurchaseOrderFields, precondition: Precondition | null): Promise<PurchaseOrder | null> {
      if (!(await lock(id, precondition, 'edited', ['draft']))) return null;
      await checkLinks(changes);
      const params = new SqlParams();
      const sets = ['updated_at = now()'];
      if (changes.supplier !== undefined) sets.push(`supplier = ${params.add(changes.supplier)}`);
      if (changes.warehouse_id !== undefined) sets.push(`warehouse_id = ${params.add(changes.warehouse_id)}`);
      if (changes.notes !== undefined) sets.push(`notes = ${params.add(changes.notes)}`);
      if (changes.lines !== undefined) {
        const lines = planLines(changes.lines, []);
        sets.push(`lines = ${params.add(JSON.stringify(lines))}`, `total = ${params.add(totalOf(lines))}`);
      }
      await db.query(`update purchase_orders set ${sets.join(', ')} where id = ${params.add(id)}`, params.values);
      return find(id);
    },

    async order(id: string, precondition: Precondition | null): Promise<PurchaseOrder | null> {
      if (!(await lock(id, precondition, 'ordered', ['draft']))) return null;
      return setStatus(id, 'ordered', 'ordered_at');
    },

    async cancel(id: string, precondition: Precondition | null): Promise<PurchaseOrder | null> {
      if (!(await lock(id, precondition, 'cancelled', ['draft', 'ordered', 'partially_received']))) return null;
      return setStatus(id, 'cancelled', 'cancelled_at');
    },

    /**
     * Receives `receipt` (item and quantity per line; default: everything still outstanding) into the
     * order's warehouse; more than is outstanding is 409. Answers the order and the movements made.
     */
    async receive(id: string, receipt: { item_id: string; quantity: number }[] | undefined, precondition: Precondition | null)
      : Promise<{ order: PurchaseOrder; movements: Movement[] } | null> {
      const order = await lock(id, precondition, 'received', ['ordered', 'partially_received']);
      if (!order) return null;
      const wanted = receipt ?? order.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity - l.received_quantity })).filter((r) => r.quantity > 0);
      const lines = order.lines.map((l) => ({ ...l }));
      const issues: Issue[] = [];
      wanted.forEach((r, i) => {
        const line = lines.find((l) => l.item_id === r.item_id);
        if (!line) issues.push({ path: `lines.${i}.item_id`, message: 'is not a line of this order' });
        else if (r.quantity > line.quantity - line.received_quantity) {
          issues.push({ path: `lines.${i}.quantity`, message: `exceeds the ${line.quantity - line.received_quantity} still outstanding` });
        } else line.received_quantity += r.quantity;
      });
      if (issues.length) throw conflict('the receipt does not fit the order', issues);
      const inventory = createInventoryRepository(db, actor);
      const movements: Movement[] = [];
      for (const r of wanted) {
        const line = lines.find((l) => l.item_id === r.item_id)!;
        movements.push((await inventory.move(r.item_id, {
          kind: 'receive', warehouse_id: order.warehouse_id, quantity: r.quantity, unit_cost: line.unit_cost,
          purchase_order_id: id, note: `purchase order ${order.number}`,
        }))!);
      }
      const complete = lines.every((l) => l.received_quantity === l.quantity);
      return { order: await setStatus(id, complete ? 'received' : 'partially_received', complete ? 'received_at' : null, lines), movements };
    },
  };
}

/** Lines with their received quantities and subtotals; one line per item. */
function planLines(input: readonly PurchaseLineInput[], received: readonly PurchaseLine[]): PurchaseLine[] {
  const issues: Issue[] = [];
  const seen = new Set<string>();
  input.forEach((line, i) => {
    if (seen.has(line.item_id)) issues.push({ path: `lines.${i}.item_id`, message: 'is on another line: one line per item' });
    seen.add(line.item_id);
  });
  if (issues.length) throw badRequest('the lines are not valid', issues);
  return input.map((line) => ({
    item_id: line.item_id,
    quantity: line.quantity,
    unit_cost: line.unit_cost,
    received_quantity: received.find((r) => r.item_id === line.item_id)?.received_quantity ?? 0,
    subtotal: Number(BigInt(line.quantity) * BigInt(line.unit_cost)),
  }));
}

function totalOf(lines: readonly PurchaseLine[]): number {
  const total = lines.reduce((sum, l) => sum + BigInt(l.quantity) * BigInt(l.unit_cost), 0n);
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw badRequest('the order total is too large', [{ path: 'lines', message: 'the total must fit in 2^53 − 1 minor units' }]);
  return Number(total);
}

function toOrder(row: Row): PurchaseOrder {
  return { ...row, number: Number(row.number), total: Number(row.total) };
}
