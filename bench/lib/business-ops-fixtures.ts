import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { withTenant } from '../../services/shared/db.js';

/**
 * What the quote, stock and inspection scenarios of `npm run bench -- api` work on, written straight into
 * the bench tenant as the API would have: sent quotes to accept (each once), parts with ample stock in one
 * warehouse (and one "hot" part every contended consume takes from), and a checklist with a photo item.
 */
export interface OpsFixtures {
  quoteIds: string[];
  itemIds: string[];
  hotItemId: string;
  warehouseId: string;
  templateId: string;
}

export async function seedBusinessOps(owner: pg.Pool, tenantId: string, counts: { quotes: number; items: number }): Promise<OpsFixtures> {
  return withTenant(owner, tenantId, async (db) => {
    const items = JSON.stringify([{ kind: 'part', description: 'Filter', quantity: 2, unit_price: 1500, tax_rate: 20, subtotal: 3000, tax: 600, total: 3600 }]);
    const quoteIds = (await db.query<{ id: string }>(
      `insert into quotes (tenant_id, number, currency, stage, items, subtotal, tax_total, total, sent_at)
       select $1, n, 'USD', 'sent', $2, 3000, 600, 3600, now() from generate_series(1, $3::int) as n returning id`,
      [tenantId, items, counts.quotes],
    )).rows.map((r) => r.id);
    await db.query(`insert into tenant_counters (tenant_id, name, value) values ($1, 'quote', $2)`, [tenantId, counts.quotes]);
    const warehouseId = (await db.query<{ id: string }>(`insert into warehouses (tenant_id, name) values ($1, 'Bench depot') returning id`, [tenantId])).rows[0]!.id;
    // counts.items parts with a million units each, and the hot part with ten million.
    const itemIds = (await db.query<{ id: string }>(
      `insert into inventory_items (tenant_id, sku, name) select $1, 'BENCH-' || n, 'Bench part ' || n from generate_series(0, $2::int) as n returning id`,
      [tenantId, counts.items],
    )).rows.map((r) => r.id);
    const hotItemId = itemIds.pop()!;
    await db.query(
      `insert into inventory_balances (item_id, tenant_id, quantity_on_hand, stock_value, average_cost)
       select id, $1, case when id = $3 then 10000000 else 1000000 end, case when id = $3 then 1000000000 else 100000000 end, 100
         from unnest($2::uuid[]) as id`,
      [tenantId, [...itemIds, hotItemId], hotItemId],
    );
    await db.query(
      `insert into inventory_stock (item_id, warehouse_id, tenant_id, quantity)
       select id, $2, $1, case when id = $4 then 10000000 else 1000000 end from unnest($3::uuid[]) as id`,
      [tenantId, warehouseId, [...itemIds, hotItemId], hotItemId],
    );
    const templateId = (await db.query<{ id: string }>(
      `insert into inspection_templates (tenant_id, name, items) values ($1, 'Bench check', $2) returning id`,
      [tenantId, JSON.stringify([{ key: 'ok', label: 'All fine', type: 'check', required: true }, { key: 'photo', label: 'Photo', type: 'photo', required: true }])],
    )).rows[0]!.id;
    return { quoteIds, itemIds, hotItemId, warehouseId, templateId };
  });
}

/** A small PNG signature as a data URL. */
export const SIGNATURE = `data:image/png;base64,${Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(600)]).toString('base64')}`;

/** An inspection submission (JSON) carrying one photo of `photoBytes` (a JPEG by its bytes). */
export function inspectionBody(templateId: string, photoBytes: number): string {
  const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(photoBytes - 4)]);
  return JSON.stringify({
    template_id: templateId,
    answers: { ok: true, photo: `data:image/jpeg;base64,${photo.toString('base64')}` },
    signed_by: 'Bench Inspector',
    signature: SIGNATURE,
  });
}
