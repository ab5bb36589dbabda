import fastJsonStringify from 'fast-json-stringify';
import { describe, expect, it } from 'vitest';
import { listOf } from '../../services/api/pagination.js';
import { nullableForSerializer } from '../../services/api/plugins/validation.js';
import { WorkOrderItem } from '../../services/api/routes/work-orders.js';

/** The serializer's reading of `Nullable(X)` (services/api/plugins/validation.ts) writes the JSON the schema as written does. */
describe('nullableForSerializer', () => {
  const schema = listOf(WorkOrderItem);
  const asWritten = fastJsonStringify(schema as never);
  const sut = fastJsonStringify(nullableForSerializer(JSON.parse(JSON.stringify(schema))) as never);

  const order = (i: number) => ({
    id: '0b6f8b6e-1a2b-4c3d-8e9f-0123456789ab', title: `Order "${i}"`, description: i % 2 ? 'Service visit' : null, priority: 'high', status: 'draft',
    client_id: i % 3 ? null : '1b6f8b6e-1a2b-4c3d-8e9f-0123456789ab', site_id: null, asset_id: null,
    assignee_id: i % 4 ? null : '2b6f8b6e-1a2b-4c3d-8e9f-0123456789ab', scheduled_start: i % 3 ? null : new Date(Date.UTC(2026, 0, i + 1)),
    scheduled_end: null, notes: i % 2 ? null : 'ünïcödé\n', started_at: null, completed_at: null, cancelled_at: null, archived_at: null,
    signoff: i % 5 ? null : { signed_by: 'x', signed_at: new Date(0), signature: i % 10 ? null : { content_type: 'image/png', size: 12 } },
    created_by: i % 2 ? null : '3b6f8b6e-1a2b-4c3d-8e9f-0123456789ab', version: i + 1, created_at: new Date(i), updated_at: new Date(i),
  });

  it('writes the same page, nulls and values alike', () => {
    for (const meta of [{ total: 10_000, limit: 20, offset: 0, next_cursor: 'abc' }, { total: null, limit: 20, offset: 0, next_cursor: null }]) {
      const page = { data: Array.from({ length: 20 }, (_, i) => order(i)), meta };
      expect(sut(page as never)).toBe(asWritten(page as never));
    }
  });

  it('turns only a two-option union with null into nullable', () => {
    expect(nullableForSerializer({ anyOf: [{ type: 'string', format: 'uuid' }, { type: 'null' }], description: 'd' }))
      .toEqual({ type: 'string', format: 'uuid', description: 'd', nullable: true });
    const three = { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }] };
    expect(nullableForSerializer(three)).toEqual(three);
    const noNull = { anyOf: [{ type: 'string' }, { type: 'integer' }] };
    expect(nullableForSerializer(noNull)).toEqual(noNull);
  });
});
