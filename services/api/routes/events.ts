import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listOf, listQuerySchema } from '../pagination.js';
import { createEventRepository, EVENT_SORT_FIELDS } from '../repositories/events.js';
import { Nullable, TimeRangeQuery, Timestamp, Uuid } from '../schemas.js';

const EventItem = Type.Object({
  id: Type.String({ description: 'The event id (events table)' }),
  event: Type.String({ description: 'Event type, e.g. asset.geofence_entered' }),
  tenant_id: Uuid(),
  occurred_at: Timestamp(),
  data: Type.Record(Type.String(), Type.Unknown()),
  recorded_at: Timestamp(),
  stream_id: Nullable(Type.String({ description: 'Its id in the live stream: pass it as `since` on /v1/live to replay from there' })),
});

const EventQuery = listQuerySchema(EVENT_SORT_FIELDS, {
  type: Type.Optional(Type.String({ maxLength: 500, description: 'An event type, or several separated by commas' })),
  asset_id: Type.Optional(Uuid()),
  device_id: Type.Optional(Uuid()),
  employee_id: Type.Optional(Uuid()),
  geofence_id: Type.Optional(Uuid()),
  ...TimeRangeQuery,
});

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/events', {
    schema: {
      tags: ['events'],
      summary: 'The event log (geofence, punch and business events), newest first, for audit and replay',
      querystring: EventQuery,
      response: { 200: listOf(EventItem) },
    },
    config: { scope: 'events.read' },
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createEventRepository(db).list(filters, { limit, offset, cursor, sort }));
  });
};
