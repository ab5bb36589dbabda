import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { ITEM_TYPES } from '../inspection-answers.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createInspectionTemplateRepository, TEMPLATE_SORT_FIELDS } from '../repositories/inspection-templates.js';
import { dataOf, IdParams, NoContent, Nullable, StringEnum, Timestamp, Uuid, Version } from '../schemas.js';

const ItemType = StringEnum(ITEM_TYPES);

const ItemInput = Type.Object({
  key: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,63}$', description: 'The answer\'s key (and, in a multipart submission, the name of its photo files)' }),
  label: Type.String({ minLength: 1, maxLength: 500 }),
  type: ItemType,
  required: Type.Optional(Type.Boolean({ description: 'Must be answered; default true' })),
}, { additionalProperties: false });

export const TemplateItem = Type.Object({
  key: Type.String(),
  label: Type.String(),
  type: ItemType,
  required: Type.Boolean(),
});

const Template = Type.Object({
  id: Uuid(),
  name: Type.String(),
  description: Nullable(Type.String()),
  items: Type.Array(TemplateItem),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Items = Type.Array(ItemInput, { minItems: 1, maxItems: 200 });
const NewTemplate = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 5000 }))),
  items: Items,
}, { additionalProperties: false });
const TemplateChanges = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 5000 }))),
  items: Type.Optional(Items),
}, { additionalProperties: false, minProperties: 1 });

const TemplateQuery = listQuerySchema(TEMPLATE_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
});

/** Inspection checklists (DESIGN section 6; docs/design.md, "Inspections"). */
export const inspectionTemplateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['inspections'];
  const read = { scope: 'inspections.read' };
  const write = { scope: 'inspections.write' };

  app.get('/inspection-templates', {
    schema: { tags, summary: 'List inspection templates', querystring: TemplateQuery, response: { 200: listOf(Template) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createInspectionTemplateRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.post('/inspection-templates', {
    schema: { tags, summary: 'Create a checklist template', body: NewTemplate, response: { 201: dataOf(Template) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => ({ data: await createInspectionTemplateRepository(db).create(request.body) })));

  app.get('/inspection-templates/:id', {
    schema: { tags, summary: 'Get an inspection template', params: IdParams, response: { 200: dataOf(Template) } },
    config: read,
  }, async (request) => {
    const template = await request.tenantDb((db) => createInspectionTemplateRepository(db).find(request.params.id));
    if (!template) throw notFound('inspection template');
    return { data: template };
  });

  app.patch('/inspection-templates/:id', {
    schema: { tags, summary: 'Change a template (forms already submitted keep the items they answered)', params: IdParams, body: TemplateChanges, response: { 200: dataOf(Template) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const template = await createInspectionTemplateRepository(db).update(request.params.id, request.body, request.ifMatch);
    if (!template) throw notFound('inspection template');
    return { data: template };
  }));

  app.delete('/inspection-templates/:id', {
    schema: { tags, summary: 'Delete a template no form was submitted against (409 otherwise)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createInspectionTemplateRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('inspection template');
  }));
};
