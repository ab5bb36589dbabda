import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PUNCH_KINDS } from '../../shared/contracts/domain.js';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createTimesheetRepository, TIMESHEET_STATUSES } from '../repositories/timesheets.js';
import { dataOf, Nullable, NullableTimestamp, StringEnum, TimeRangeQuery, Timestamp, Uuid } from '../schemas.js';

const Kind = StringEnum(PUNCH_KINDS);
const Status = StringEnum(TIMESHEET_STATUSES);

const Punch = Type.Object({
  id: Type.String(),
  kind: Kind,
  ts: Timestamp(),
  device_id: Uuid(),
  gps_verified: Nullable(Type.Boolean({ description: 'null until the punch has been checked' })),
  site_id: Nullable(Uuid({ description: 'The site it was verified at; when not verified, the nearest site' })),
  distance_m: Nullable(Type.Number()),
  lat: Nullable(Type.Number()),
  lon: Nullable(Type.Number()),
});

const Timesheet = Type.Object({
  id: Type.String({ description: '{employee_id}_{YYYY-MM-DD}' }),
  employee_id: Uuid(),
  employee_name: Nullable(Type.String()),
  date: Type.String({ format: 'date', description: 'The day (UTC)' }),
  status: Status,
  hours: Type.Number({ description: 'Sum of the closed in/out periods' }),
  verified: Type.Boolean({ description: 'Every punch of the day was GPS-verified at a site' }),
  complete: Type.Boolean({ description: 'Every in has its out' }),
  periods: Type.Array(Type.Object({
    in: NullableTimestamp(),
    out: NullableTimestamp(),
    hours: Type.Number(),
    verified: Type.Boolean(),
  })),
  punches: Type.Array(Punch),
  note: Nullable(Type.String()),
  decided_by: Nullable(Uuid({ description: 'The user who approved or rejected it' })),
  decided_at: NullableTimestamp(),
});

const PunchRecord = Type.Object({
  id: Type.String(),
  employee_id: Nullable(Uuid({ description: 'null when employee_ref matched no employee' })),
  employee_ref: Type.String({ description: 'What the device sent: an employee id or badge code' }),
  device_id: Uuid(),
  kind: Kind,
  ts: Timestamp(),
  received_at: Timestamp(),
  lat: Nullable(Type.Number()),
  lon: Nullable(Type.Number()),
  accuracy_m: Nullable(Type.Number()),
  gps_verified: Nullable(Type.Boolean()),
  site_id: Nullable(Uuid()),
  distance_m: Nullable(Type.Number()),
  verified_at: NullableTimestamp(),
});

const TimesheetQuery = listQuerySchema(['date'], {
  employee_id: Type.Optional(Uuid()),
  status: Type.Optional(Status),
  ...TimeRangeQuery,
});

const PunchQuery = listQuerySchema(['ts'], {
  employee_id: Type.Optional(Uuid()),
  device_id: Type.Optional(Uuid()),
  gps_verified: Type.Optional(Type.Boolean()),
  unknown_employee: Type.Optional(Type.Boolean({ description: 'Punches whose employee_ref matched no employee' })),
  ...TimeRangeQuery,
});

const TimesheetParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-fA-F-]{36}_\\d{4}-\\d{2}-\\d{2}$' }) });
const Decision = Type.Object({ note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });

export const timesheetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['timesheets'];
  const read = { scope: 'timesheets.read' };

  app.get('/timesheets', {
    schema: {
      tags,
      summary: 'Timesheets generated from punches: one per employee and day (UTC), with in/out periods, hours and GPS verification',
      querystring: TimesheetQuery,
      response: { 200: listOf(Timesheet) },
    },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createTimesheetRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/timesheets/punches', {
    schema: {
      tags,
      summary: 'Punch records as received and verified, including those from unknown employees; newest first',
      querystring: PunchQuery,
      response: { 200: listOf(PunchRecord) },
    },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createTimesheetRepository(db).listPunches(filters, { limit, offset, cursor, sort }));
  });

  app.get('/timesheets/:id', {
    schema: { tags, summary: 'Get a timesheet', params: TimesheetParams, response: { 200: dataOf(Timesheet) } },
    config: read,
  }, async (request) => {
    const timesheet = await request.tenantDb((db) => createTimesheetRepository(db).find(request.params.id));
    if (!timesheet) throw notFound('timesheet');
    return { data: timesheet };
  });

  for (const [action, status] of [['approve', 'approved'], ['reject', 'rejected']] as const) {
    app.post(`/timesheets/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'approve' ? 'Approve a timesheet' : 'Reject a timesheet',
        description: 'A later decision replaces an earlier one.',
        params: TimesheetParams,
        body: Decision,
        response: { 200: dataOf(Timesheet) },
      },
      config: { scope: 'timesheets.write', idempotent: true },
      // The note is optional, and so is the body that carries it.
      preValidation: async (request) => {
        request.body ??= {};
      },
    }, async (request, reply) => reply.commit(200, async (db) => {
      const timesheet = await createTimesheetRepository(db).decide(request.params.id, status, request.principal.userId, request.body.note ?? null);
      if (!timesheet) throw notFound('timesheet');
      return { data: timesheet };
    }));
  }
};
