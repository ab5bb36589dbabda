import { Type, type FastifyPluginAsyncTypebox, type Static } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createEmployeeRepository, EMPLOYEE_SORT_FIELDS, type Certification } from '../repositories/employees.js';
import { dataOf, IdParams, Nullable, Timestamp, Uuid, Version } from '../schemas.js';

const DateOnly = (description: string) => Type.String({ format: 'date', description });

const CertificationItem = Type.Object({
  name: Type.String(),
  issuer: Nullable(Type.String()),
  expires_on: Nullable(DateOnly('YYYY-MM-DD')),
});

const CertificationInput = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  issuer: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 200 }))),
  expires_on: Type.Optional(Nullable(DateOnly('YYYY-MM-DD; leave out for one that does not expire'))),
}, { additionalProperties: false });

const EmployeeItem = Type.Object({
  id: Uuid(),
  name: Type.String(),
  email: Nullable(Type.String()),
  phone: Nullable(Type.String()),
  role: Nullable(Type.String({ description: 'Job role, free text (technician, foreman, …)' })),
  badge_code: Nullable(Type.String({ description: 'What an attendance device sends for this employee (or the id)' })),
  certifications: Type.Array(CertificationItem),
  certification_expires_on: Nullable(DateOnly('The earliest expiry among the certifications')),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Optional = {
  email: Type.Optional(Nullable(Type.String({ format: 'email', maxLength: 320 }))),
  phone: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 50 }))),
  role: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100 }))),
  badge_code: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100, pattern: '^\\S(.*\\S)?$', description: 'Unique within the organization' }))),
  certifications: Type.Optional(Type.Array(CertificationInput, { maxItems: 100, description: 'Replaces the whole list' })),
};
const Name = Type.String({ minLength: 1, maxLength: 200 });

const NewEmployee = Type.Object({ name: Name, ...Optional }, { additionalProperties: false });
const EmployeeChanges = Type.Object({ name: Type.Optional(Name), ...Optional }, { additionalProperties: false, minProperties: 1 });

const EmployeeQuery = listQuerySchema(EMPLOYEE_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
  email: Type.Optional(Type.String({ maxLength: 320 })),
  role: Type.Optional(Type.String({ maxLength: 100 })),
  badge_code: Type.Optional(Type.String({ maxLength: 100 })),
  certification_expires_before: Type.Optional(DateOnly('Employees with a certification expiring (or expired) before this date')),
});

const certificationsOf = (input: Static<typeof CertificationInput>[]): Certification[] =>
  input.map((c) => ({ name: c.name, issuer: c.issuer ?? null, expires_on: c.expires_on ?? null }));

/** `/v1/employees`: the roster, with badge codes for attendance devices and certifications. */
export const employeeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['employees'];
  const read = { scope: 'employees.read' };
  const write = { scope: 'employees.write' };

  app.post('/employees', {
    schema: { tags, summary: 'Add an employee', body: NewEmployee, response: { 201: dataOf(EmployeeItem) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const { name, email = null, phone = null, role = null, badge_code = null, certifications = [] } = request.body;
    return { data: await createEmployeeRepository(db).create({ name, email, phone, role, badge_code, certifications: certificationsOf(certifications) }) };
  }));

  app.get('/employees', {
    schema: { tags, summary: 'List employees', querystring: EmployeeQuery, response: { 200: listOf(EmployeeItem) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createEmployeeRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/employees/:id', {
    schema: { tags, summary: 'Get an employee', params: IdParams, response: { 200: dataOf(EmployeeItem) } },
    config: read,
  }, async (request) => {
    const employee = await request.tenantDb((db) => createEmployeeRepository(db).find(request.params.id));
    if (!employee) throw notFound('employee');
    return { data: employee };
  });

  app.patch('/employees/:id', {
    schema: { tags, summary: 'Change an employee', params: IdParams, body: EmployeeChanges, response: { 200: dataOf(EmployeeItem) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const { certifications, ...rest } = request.body;
    const changes = { ...rest, ...(certifications ? { certifications: certificationsOf(certifications) } : {}) };
    const employee = await createEmployeeRepository(db).update(request.params.id, changes, request.ifMatch);
    if (!employee) throw notFound('employee');
    return { data: employee };
  }));
};
