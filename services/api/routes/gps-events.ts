import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listOf, listQuerySchema } from '../pagination.js';
import { createGpsEventRepository, GPS_BUCKETS, MAX_TRACK_BUCKETS, type GpsBucketSize } from '../repositories/gps-events.js';
import { Nullable, StringEnum, TimeRangeQuery, Timestamp, Uuid } from '../schemas.js';

const Fix = Type.Object({
  id: Type.String(),
  asset_id: Nullable(Uuid()),
  device_id: Uuid(),
  ts: Timestamp({ description: 'Device time of the fix' }),
  received_at: Timestamp(),
  lat: Type.Number(),
  lon: Type.Number(),
  speed_mps: Nullable(Type.Number()),
  heading_deg: Nullable(Type.Number()),
  accuracy_m: Nullable(Type.Number()),
  altitude_m: Nullable(Type.Number()),
  battery_pct: Nullable(Type.Number()),
  seq: Nullable(Type.Integer({ minimum: 0 })),
}, { title: 'GpsFix' });

const Bucket = Type.Object({
  bucket: Timestamp({ description: 'Start of the time bucket' }),
  asset_id: Nullable(Uuid()),
  device_id: Uuid(),
  fixes: Type.Integer(),
  first_ts: Timestamp(),
  last_ts: Timestamp(),
  lat: Type.Number({ description: 'Latitude of the last fix in the bucket' }),
  lon: Type.Number({ description: 'Longitude of the last fix in the bucket' }),
  avg_speed_mps: Nullable(Type.Number()),
  max_speed_mps: Nullable(Type.Number()),
}, { title: 'GpsTrackBucket' });

const GpsEventQuery = listQuerySchema(['ts'], {
  asset_id: Type.Optional(Uuid()),
  device_id: Type.Optional(Uuid()),
  geofence_id: Type.Optional(Uuid({ description: 'Only fixes inside this geofence (zone)' })),
  bucket: Type.Optional(StringEnum(Object.keys(GPS_BUCKETS) as GpsBucketSize[], {
    description: `Time-bucketed track: one row per device and bucket (without \`from\`: the 24 hours before \`to\`); at most ${MAX_TRACK_BUCKETS} buckets between \`from\` and \`to\``,
  })),
  ...TimeRangeQuery,
});

export const gpsEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/gps-events', {
    schema: {
      tags: ['gps-events'],
      summary: 'Stored fixes by asset, device, time range or geofence zone, newest first; or time-bucketed tracks',
      description: 'A high-volume list: page with `next_cursor` (`meta.total` is null).',
      querystring: GpsEventQuery,
      response: { 200: listOf(Type.Union([Fix, Bucket])) },
    },
    config: { scope: 'gps_events.read' },
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createGpsEventRepository(db).list(filters, { limit, offset, cursor, sort }));
  });
};
