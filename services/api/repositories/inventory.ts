import { PgError, pgErrorCode, type Queryable } from '../../shared/db.js';
import { badRequest, conflict } from '../../shared/contracts/errors.js';
import type { Actor } from '../history.js';
import { addUnits, removeUnits, type Valuation, type Valued } from '../inventory-costing.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { checkReferences, stillReferenced, type Reference } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';

export interface StockLevel {
  warehouse_id: string;
  quantity: number;
}

export interface InventoryItem {
  id: string;
  sku: string;
  name: string;
  description: string | null;
  unit: string | null;
  fits_models: string[];
  quantity_on_hand: number;
  average_cost: number;
  stock_value: number;
  stock: StockLevel[];
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface InventoryItemFields {
  sku?: string;
  name?: string;
  description?: string | null;
  unit?: string | null;
  fits_models?: string[];
}

export interface InventoryFilters {
  sku?: string;
  name?: string;
  fits_model?: string;
  fits_asset_id?: string;
  warehouse_id?: string;
}

export const MOVEMENT_KINDS = ['receive', 'consume', 'transfer', 'adjust'] as const;
export type MovementKind = (typeof MOVEMENT_KINDS)[number];

export interface MovementInput {
  kind: MovementKind;
  warehouse_id: string;
  to_warehouse_id?: string;
  quantity: number;
  unit_cost?: number;
  work_order_id?: string;
  note?: string;
  /** Set by a purchase order's receipt (not by clients directly). */
  purchase_order_id?: string;
}

export interface Movement {
  id: string;
  item_id: string;
  kind: MovementKind;
  warehouse_id: string;
  to_warehouse_id: string | null;
  quantity: number;
  unit_cost: number | null;
  value: number;
  work_order_id: string | null;
  purchase_order_id: string | null;
  note: string | null;
  quantity_after: number;
  stock_value_after: number;
  average_cost_after: number;
  created_by: string | null;
  api_key_id: string | null;
  created_at: Date;
}

export interface MovementFilters {
  kind?: MovementKind;
  warehouse_id?: string;
  work_order_id?: string;
  purchase_order_id?: string;
  from?: string;
  to?: string;
}

export const INVENTORY_SORT_FIELDS = ['created_at', 'sku', 'name', 'quantity_on_hand'] as const;

const STOCK = `coalesce((select json_agg(json_build_object('warehouse_id', s.warehouse_id, 'quantity', s.quantity) order by s.warehouse_id)
  from inventory_stock s where s.item_id = i.id), '[]')`;
const SELECT = `i.id, i.sku, i.name, i.description, i.unit, i.fits_models, b.quantity_on_hand, b.average_cost, b.stock_value,
  ${STOCK} as stock, i.version, i.created_at, i.updated_at`;
const FROM = 'inventory_items i join inventory_balances b on b.item_id = i.id';

const MOVEMENT_SELECT = `m.id, m.item_id, m.kind, m.warehouse_id, m.to_warehouse_id, m.quantity, m.unit_cost, m.value, m.work_order_id,
  m.purchase_order_id, m.note,
  m.quantity_after, m.stock_value_after, m.average_cost_after, m.created_by, m.api_key_id, m.created_at`;

type ItemRow = Omit<InventoryItem, 'quantity_on_hand' | 'average_cost' | 'stock_value'> & Record<'quantity_on_hand' | 'average_cost' | 'stock_value', string>;
type MovementRow = Omit<Movement, 'quantity' | 'unit_cost' | 'value' | 'quantity_after' | 'stock_value_after' | 'average_cost_after'>
  & Record<'quantity' | 'value' | 'quantity_after' | 'stock_value_after' | 'average_cost_after', string> & { unit_cost: string | null };

/** The parts catalogue of the tenant set on `db`, its stock per warehouse, and the movement log (docs/design.md, "Inventory"). */
export function createInventoryRepository(db: Queryable, actor: Actor) {
  const find = async (id: string): Promise<InventoryItem | null> => {
    const { rows } = await db.query<ItemRow>({ name: 'fieldops_inventory_find', text: `select ${SELECT} from ${FROM} where i.id = $1`, values: [id] });
    return rows[0] ? toItem(rows[0]) : null;
  };

  return {
    find,

    list(filters: InventoryFilters, query: ListQuery): Promise<ListResult<InventoryItem>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.sku) where.push(`i.sku = ${params.add(filters.sku)}`);
      if (filters.name) where.push(`i.name ilike ${params.add(containsPattern(filters.name))}`);
      if (filters.fits_model) where.push(`i.fits_model_keys @> array[lower(btrim(${params.add(filters.fits_model)}::text))]`);
      if (filters.fits_asset_id) {
        where.push(`i.fits_model_keys @> array[(select lower(btrim(a.model)) from assets a where a.id = ${params.add(filters.fits_asset_id)})]`);
      }
      if (filters.warehouse_id) {
        where.push(`exists (select 1 from inventory_stock s where s.item_id = i.id and s.warehouse_id = ${params.add(filters.warehouse_id)} and s.quantity > 0)`);
      }
      return listPage<ItemRow>(db, {
        select: SELECT, from: FROM, where, params, id: 'i.id',
        sortable: { created_at: 'i.created_at', sku: 'i.sku', name: 'i.name', quantity_on_hand: 'b.quantity_on_hand' },
        defaultSort: 'created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toItem) }));
    },

    /** Whether the asset exists (for `GET /v1/assets/{id}/parts`, which is 404 for a missing one). */
    async assetExists(assetId: string): Promise<boolean> {
      const { rowCount } = await db.query('select 1 from assets where id = $1', [assetId]);
      return rowCount === 1;
    },

    async create(fields: InventoryItemFields & { sku: string; name: string }): Promise<InventoryItem> {
      const { rows } = await db.query<{ id: string }>(
        `with i as (
           insert into inventory_items (tenant_id, sku, name, description, unit, fits_models)
           values (app_tenant(), $1, $2, $3, $4, $5) returning id)
         insert into inventory_balances (item_id, tenant_id) select id, app_tenant() from i returning item_id as id`,
        [fields.sku, fields.name, fields.description ?? null, fields.unit ?? null, fields.fits_models ?? []],
      ).catch(skuTaken);
      return (await find(rows[0]!.id))!;
    },

    async update(id: string, changes: InventoryItemFields, precondition: Precondition | null): Promise<InventoryItem | null> {
      if (!(await checkIfMatch(db, 'inventory_items', id, precondition, 'inventory item'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      for (const column of ['sku', 'name', 'description', 'unit', 'fits_models'] as const) {
        if (changes[column] !== undefined) sets.push(`${column} = ${params.add(changes[column])}`);
      }
      const { rowCount } = await db.query(`update inventory_items set ${sets.join(', ')} where id = ${idParam}`, params.values).catch(skuTaken);
      return rowCount ? find(id) : null;
    },

    /** Only an item that never moved goes: its movements are a record that stays (409). */
    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'inventory_items', id, precondition, 'inventory item'))) return false;
      const { rowCount } = await db.query('delete from inventory_items where id = $1', [id])
        .catch((err: unknown) => stillReferenced(err, 'inventory item', 'its stock movements'));
      return rowCount === 1;
    },

    /**
     * One stock movement, all or nothing. The item's balance row is locked first, so the movements of
     * an item run one after the other (and two movements never lock rows in opposite orders); the
     * warehouse's stock is taken by an update that only matches while enough is there, so no warehouse
     * ever goes below zero, however many requests race. Null when there is no such item.
     */
    async move(itemId: string, input: MovementInput): Promise<Movement | null> {
      checkMovementShape(input);
      const { rows } = await db.query<Record<'quantity' | 'value' | 'average_cost', string>>({
        name: 'fieldops_inventory_lock',
        text: 'select quantity_on_hand as quantity, stock_value as value, average_cost from inventory_balances where item_id = $1 for update',
        values: [itemId],
      });
      if (!rows[0]) return null;
      const refs: Reference[] = [
        { path: 'warehouse_id', table: 'warehouses', id: input.warehouse_id, what: 'warehouse' },
        { path: 'to_warehouse_id', table: 'warehouses', id: input.to_warehouse_id, what: 'warehouse' },
        { path: 'work_order_id', table: 'work_orders', id: input.work_order_id, what: 'work order' },
      ];
      await checkReferences(db, refs);
      const stock: Valuation = { quantity: BigInt(rows[0].quantity), value: BigInt(rows[0].value), averageCost: BigInt(rows[0].average_cost) };
      const quantity = BigInt(input.quantity);

      let valued: Valued;
      if (input.kind === 'receive' || (input.kind === 'adjust' && quantity > 0n)) {
        valued = addUnits(stock, quantity, BigInt(input.unit_cost ?? stock.averageCost));
        await putStock(db, itemId, input.warehouse_id, quantity);
      } else if (input.kind === 'transfer') {
        await takeStock(db, itemId, input.warehouse_id, quantity);
        await putStock(db, itemId, input.to_warehouse_id!, quantity);
        valued = { ...stock, delta: 0n, unitCost: stock.averageCost };
      } else {
        const taken = input.kind === 'adjust' ? -quantity : quantity;
        await takeStock(db, itemId, input.warehouse_id, taken);
        valued = removeUnits(stock, taken);
      }

      await db.query({
        name: 'fieldops_inventory_balance',
        text: 'update inventory_balances set quantity_on_hand = $2, stock_value = $3, average_cost = $4, updated_at = now() where item_id = $1',
        values: [itemId, valued.quantity, valued.value, valued.averageCost],
      });
      const inserted = await db.query<MovementRow>({
        name: 'fieldops_inventory_movement',
        text: `insert into inventory_movements as m (tenant_id, item_id, kind, warehouse_id, to_warehouse_id, quantity, unit_cost, value, work_order_id,
                 purchase_order_id, note, quantity_after, stock_value_after, average_cost_after, created_by, api_key_id)
               values (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning ${MOVEMENT_SELECT}`,
        values: [itemId, input.kind, input.warehouse_id, input.to_warehouse_id ?? null, quantity, valued.unitCost, valued.delta,
          input.work_order_id ?? null, input.purchase_order_id ?? null, input.note ?? null, valued.quantity, valued.value, valued.averageCost,
          actor.userId, actor.apiKeyId],
      });
      return toMovement(inserted.rows[0]!);
    },

    movements(itemId: string, filters: MovementFilters, query: ListQuery): Promise<ListResult<Movement>> {
      const params = new SqlParams();
      const where = [`m.item_id = ${params.add(itemId)}`];
      if (filters.kind) where.push(`m.kind = ${params.add(filters.kind)}`);
      if (filters.warehouse_id) {
        const warehouse = params.add(filters.warehouse_id);
        where.push(`(m.warehouse_id = ${warehouse} or m.to_warehouse_id = ${warehouse})`);
      }
      if (filters.work_order_id) where.push(`m.work_order_id = ${params.add(filters.work_order_id)}`);
      if (filters.purchase_order_id) where.push(`m.purchase_order_id = ${params.add(filters.purchase_order_id)}`);
      if (filters.from) where.push(`m.created_at >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`m.created_at < ${params.add(filters.to)}`);
      return listPage<MovementRow>(db, {
        select: MOVEMENT_SELECT, from: 'inventory_movements m', where, params, id: 'm.id',
        sortable: { id: 'm.id', created_at: 'm.created_at' }, defaultSort: 'id',
      }, query).then((page) => ({ ...page, data: page.data.map(toMovement) }));
    },
  };
}

export type InventoryRepository = ReturnType<typeof createInventoryRepository>;

/** What the schema cannot say: which fields go with which kind. */
function checkMovementShape(input: MovementInput): void {
  const issues = [];
  if (input.kind === 'transfer' && !input.to_warehouse_id) issues.push({ path: 'to_warehouse_id', message: 'is required for a transfer' });
  if (input.kind !== 'transfer' && input.to_warehouse_id) issues.push({ path: 'to_warehouse_id', message: 'only applies to a transfer' });
  if (input.kind === 'transfer' && input.to_warehouse_id === input.warehouse_id) {
    issues.push({ path: 'to_warehouse_id', message: 'must differ from warehouse_id' });
  }
  if (input.kind === 'receive' && input.unit_cost === undefined) issues.push({ path: 'unit_cost', message: 'is required for a receipt' });
  if ((input.kind === 'consume' || input.kind === 'transfer') && input.unit_cost !== undefined) {
    issues.push({ path: 'unit_cost', message: 'only applies to a receipt or an adjustment: units leave at the average cost' });
  }
  if (input.kind === 'adjust' && input.quantity < 0 && input.unit_cost !== undefined) {
    issues.push({ path: 'unit_cost', message: 'only applies to units added: units removed leave at the average cost' });
  }
  if (input.quantity === 0) issues.push({ path: 'quantity', message: 'must not be 0' });
  else if (input.kind !== 'adjust' && input.quantity < 0) issues.push({ path: 'quantity', message: 'must be positive (only an adjustment is signed)' });
  if (issues.length) throw badRequest('the movement is not valid', issues);
}

/** Adds units to a warehouse's stock. */
async function putStock(db: Queryable, itemId: string, warehouseId: string, quantity: bigint): Promise<void> {
  await db.query({
    name: 'fieldops_inventory_put',
    text: `insert into inventory_stock as s (item_id, warehouse_id, tenant_id, quantity) values ($1, $2, app_tenant(), $3)
           on conflict (item_id, warehouse_id) do update set quantity = s.quantity + excluded.quantity`,
    values: [itemId, warehouseId, quantity],
  });
}

/** Takes units from a warehouse's stock, or 409 (nothing written) when it holds fewer. */
async function takeStock(db: Queryable, itemId: string, warehouseId: string, quantity: bigint): Promise<void> {
  const { rowCount } = await db.query({
    name: 'fieldops_inventory_take',
    text: 'update inventory_stock set quantity = quantity - $3 where item_id = $1 and warehouse_id = $2 and quantity >= $3',
    values: [itemId, warehouseId, quantity],
  });
  if (rowCount) return;
  const { rows } = await db.query<{ quantity: string }>('select quantity from inventory_stock where item_id = $1 and warehouse_id = $2', [itemId, warehouseId]);
  const held = rows[0]?.quantity ?? '0';
  throw conflict(`not enough stock: the warehouse holds ${held}, the movement takes ${quantity}`, [
    { path: 'quantity', message: `exceeds the ${held} in stock at warehouse_id` },
  ]);
}

function skuTaken(err: unknown): never {
  if (pgErrorCode(err) === PgError.uniqueViolation) throw conflict('an item with this sku exists', [{ path: 'sku', message: 'is taken' }]);
  throw err;
}

function toItem(row: ItemRow): InventoryItem {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    unit: row.unit,
    fits_models: row.fits_models,
    quantity_on_hand: Number(row.quantity_on_hand),
    average_cost: Number(row.average_cost),
    stock_value: Number(row.stock_value),
    stock: row.stock,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function toMovement(row: MovementRow): Movement {
  return {
    id: row.id,
    item_id: row.item_id,
    kind: row.kind,
    warehouse_id: row.warehouse_id,
    to_warehouse_id: row.to_warehouse_id,
    quantity: Number(row.quantity),
    unit_cost: row.unit_cost === null ? null : Number(row.unit_cost),
    value: Number(row.value),
    work_order_id: row.work_order_id,
    purchase_order_id: row.purchase_order_id,
    note: row.note,
    quantity_after: Number(row.quantity_after),
    stock_value_after: Number(row.stock_value_after),
    average_cost_after: Number(row.average_cost_after),
    created_by: row.created_by,
    api_key_id: row.api_key_id,
    created_at: row.created_at,
  };
}
