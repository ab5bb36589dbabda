import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import { FENCE_GEOMETRY_TYPES, MAX_FENCE_VERTICES, validateFenceShape } from '../../shared/geofence/fence-geometry.js';
import { validateSchedule } from '../../shared/geofence/fence-schedule.js';
import { FENCE_KINDS } from '../../shared/contracts/domain.js';
import { badRequest, notFound, type Issue } from '../../shared/contracts/errors.js';
import { assertVersion } from '../preconditions.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createGeofenceRepository, GEOFENCE_SORT_FIELDS, type Geofence, type GeofenceRepository } from '../repositories/geofences.js';
import { dataOf, IdParams, NoContent, Nullable, StringEnum, Timestamp, Uuid, Version } from '../schemas.js';

const Kind = StringEnum(FENCE_KINDS, {
  description: '`site`: punches are verified against it; `restricted`: entering or leaving is a breach; `zone`: a named area',
});

const Geometry = Type.Object({
  type: StringEnum(FENCE_GEOMETRY_TYPES, { description: 'Point needs radius_m (a circle); LineString needs width_m (a corridor)' }),
  coordinates: Type.Array(Type.Any(), { description: `GeoJSON coordinates, [longitude, latitude] positions; rings closed; at most ${MAX_FENCE_VERTICES} vertices` }),
  bbox: Type.Optional(Type.Array(Type.Number())),
  // "Point with radius_m" / "LineString with width_m" (docs/design.md, "REST API"): clients may put the measure in the geometry too.
  radius_m: Type.Optional(Type.Number({ description: 'Radius of a circle (Point), metres; same as the top-level radius_m' })),
  width_m: Type.Optional(Type.Number({ description: 'Full width of a corridor (LineString), metres; same as the top-level width_m' })),
}, { additionalProperties: false, description: 'A GeoJSON Polygon, MultiPolygon, Point or LineString (WGS84)' });

const LocalTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$', description: 'Local time HH:MM' });
const Schedule = Type.Object({
  timezone: Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone, e.g. Europe/Paris' }),
  windows: Type.Array(Type.Object({
    days: Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), { minItems: 1, maxItems: 7, description: 'ISO weekdays, 1 = Monday' }),
    start: LocalTime,
    end: Type.String({ ...LocalTime, description: 'Local time HH:MM; before start means the window runs past midnight' }),
  }, { additionalProperties: false }), { minItems: 1, maxItems: 50 }),
}, { additionalProperties: false, description: 'Active hours: outside them the fence takes no evidence and raises nothing' });

const AssetFilter = Type.Object({
  asset_ids: Type.Array(Uuid(), { minItems: 1, maxItems: 1000 }),
}, { additionalProperties: false, description: 'Only these assets are evaluated against the fence' });

const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form attributes of your own' });
const ConfirmFixes = Type.Integer({ minimum: 1, maximum: 20, description: 'Consecutive fixes on the new side that confirm a crossing (default 3)' });
const Metres = (description: string) => Nullable(Type.Number({ description }));

const GeofenceItem = Type.Object({
  id: Uuid(),
  name: Type.String(),
  kind: Kind,
  geometry: Geometry,
  radius_m: Metres('Radius of a circle, metres'),
  width_m: Metres('Full width of a corridor, metres'),
  confirm_fixes: Type.Integer(),
  schedule: Nullable(Schedule),
  asset_filter: Nullable(AssetFilter),
  metadata: Metadata,
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Fields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  kind: Kind,
  geometry: Geometry,
  radius_m: Type.Optional(Metres('Radius of a circle (Point), metres')),
  width_m: Type.Optional(Metres('Full width of a corridor (LineString), metres')),
  confirm_fixes: Type.Optional(ConfirmFixes),
  schedule: Type.Optional(Nullable(Schedule)),
  asset_filter: Type.Optional(Nullable(AssetFilter)),
  metadata: Type.Optional(Metadata),
};

const NewGeofence = Type.Object(Fields, { additionalProperties: false });
const GeofenceChanges = Type.Partial(Type.Object(Fields), { additionalProperties: false, minProperties: 1 });

const GeofenceQuery = listQuerySchema(GEOFENCE_SORT_FIELDS, {
  kind: Type.Optional(Kind),
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
});

type ShapeInput = Pick<Static<typeof GeofenceChanges>, 'geometry' | 'radius_m' | 'width_m' | 'schedule' | 'asset_filter'>;

/**
 * What the schema cannot say: a shape that makes sense (closed rings, no self-intersection,
 * coordinates in range, a radius or width where needed), a real time zone, assets of this tenant.
 * Returns the normalized shape, or throws 400 with every issue at once.
 */
async function checkFence(repository: GeofenceRepository, input: ShapeInput, current: Geofence | null) {
  const issues: Issue[] = [];
  let shape: { geometry: Geofence['geometry']; radius_m: number | null; width_m: number | null } | undefined;
  if (!current || input.geometry !== undefined || input.radius_m !== undefined || input.width_m !== undefined) {
    const checked = validateFenceShape(
      input.geometry ?? current?.geometry,
      input.radius_m !== undefined ? input.radius_m : input.geometry?.radius_m ?? current?.radius_m,
      input.width_m !== undefined ? input.width_m : input.geometry?.width_m ?? current?.width_m,
    );
    if (checked.ok) shape = checked.shape;
    else issues.push(...checked.issues);
  }
  issues.push(...validateSchedule(input.schedule));
  issues.push(...(await repository.unknownAssets(input.asset_filter?.asset_ids ?? [])));
  if (issues.length) throw badRequest('the geofence is not valid', issues);
  return shape;
}

export const geofenceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['geofences'];
  const read = { scope: 'geofences.read' };
  const write = { scope: 'geofences.write' };

  app.post('/geofences', {
    schema: { tags, summary: 'Create a geofence (polygon, multipolygon, circle or corridor)', body: NewGeofence, response: { 201: dataOf(GeofenceItem) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const body = request.body;
    const repository = createGeofenceRepository(db);
    const shape = (await checkFence(repository, body, null))!;
    await repository.checkTenantCaps(shape.geometry, null);
    const geofence = await repository.create({
      name: body.name,
      kind: body.kind,
      ...shape,
      confirm_fixes: body.confirm_fixes ?? 3,
      schedule: body.schedule ?? null,
      asset_filter: body.asset_filter ?? null,
      metadata: body.metadata ?? {},
    });
    return { data: geofence };
  }));

  app.get('/geofences', {
    schema: { tags, summary: 'List geofences', querystring: GeofenceQuery, response: { 200: listOf(GeofenceItem) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createGeofenceRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/geofences/:id', {
    schema: { tags, summary: 'Get a geofence', params: IdParams, response: { 200: dataOf(GeofenceItem) } },
    config: read,
  }, async (request) => {
    const geofence = await request.tenantDb((db) => createGeofenceRepository(db).find(request.params.id));
    if (!geofence) throw notFound('geofence');
    return { data: geofence };
  });

  app.patch('/geofences/:id', {
    schema: { tags, summary: 'Change a geofence; running evaluators follow within a second', params: IdParams, body: GeofenceChanges, response: { 200: dataOf(GeofenceItem) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const { geometry: _geometry, radius_m: _radius, width_m: _width, ...rest } = request.body;
    const repository = createGeofenceRepository(db);
    const current = await repository.find(request.params.id, request.ifMatch !== null);
    if (!current) throw notFound('geofence');
    assertVersion(request.ifMatch, current.version, 'geofence');
    const shape = await checkFence(repository, request.body, current);
    if (shape) await repository.checkTenantCaps(shape.geometry, current.id);
    return { data: (await repository.update(current.id, { ...rest, ...shape }))! };
  }));

  app.delete('/geofences/:id', {
    schema: { tags, summary: 'Delete a geofence (devices at this site keep no site)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createGeofenceRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('geofence');
  }));
};
