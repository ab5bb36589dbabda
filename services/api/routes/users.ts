import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { hashPassword } from '../../shared/secrets.js';
import { conflict, notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createUserRepository, USER_ROLES, USER_SORT_FIELDS } from '../repositories/users.js';
import { dataOf, IdParams, NoContent, Nullable, NullableTimestamp, StringEnum, Timestamp, Uuid, Version } from '../schemas.js';

const Role = StringEnum([...USER_ROLES], { description: 'Built-in role; it decides the scopes of the user\'s sessions' });
const Password = Type.String({ minLength: 8, maxLength: 200 });

const User = Type.Object({
  id: Uuid(),
  email: Type.String(),
  name: Nullable(Type.String()),
  role: Role,
  disabled: Type.Boolean(),
  disabled_at: NullableTimestamp(),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const NewUser = Type.Object({
  email: Type.String({ format: 'email', maxLength: 320 }),
  password: Password,
  name: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 200 }))),
  role: Role,
}, { additionalProperties: false });

const UserChanges = Type.Object({
  name: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 200 }))),
  role: Type.Optional(Role),
  disabled: Type.Optional(Type.Boolean({ description: 'A disabled user cannot sign in; their sessions and API keys stop working' })),
  password: Type.Optional(Password),
}, { additionalProperties: false, minProperties: 1 });

const UserQuery = listQuerySchema(USER_SORT_FIELDS, {
  role: Type.Optional(Role),
  status: Type.Optional(StringEnum(['active', 'disabled'])),
  email: Type.Optional(Type.String({ maxLength: 320 })),
});

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['users'];

  app.get('/users', {
    schema: { tags, summary: 'List users', querystring: UserQuery, response: { 200: listOf(User) } },
    config: { scope: 'users.read' },
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createUserRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/users/:id', {
    schema: { tags, summary: 'Get a user', params: IdParams, response: { 200: dataOf(User) } },
    config: { scope: 'users.read' },
  }, async (request) => {
    const user = await request.tenantDb((db) => createUserRepository(db).find(request.params.id));
    if (!user) throw notFound('user');
    return { data: user };
  });

  app.post('/users', {
    schema: { tags, summary: 'Create a user with a role', body: NewUser, response: { 201: dataOf(User) } },
    config: { scope: 'users.write', idempotent: true },
  }, async (request, reply) => {
    const { password, ...fields } = request.body;
    const passwordHash = await hashPassword(password);
    return reply.commit(201, async (db) => ({ data: await createUserRepository(db).create({ ...fields, name: fields.name ?? null, passwordHash }) }));
  });

  app.patch('/users/:id', {
    schema: { tags, summary: 'Change a user\'s name, role, password or disabled state', params: IdParams, body: UserChanges, response: { 200: dataOf(User) } },
    config: { scope: 'users.write' },
  }, async (request, reply) => {
    const { id } = request.params;
    const { password, ...changes } = request.body;
    if (id === request.principal.userId && changes.disabled) {
      throw conflict('you cannot disable your own user', [{ path: 'disabled', message: 'is your own user' }]);
    }
    const passwordHash = password === undefined ? undefined : await hashPassword(password);
    await reply.commit(200, async (db) => {
      const user = await createUserRepository(db).update(id, { ...changes, passwordHash }, request.ifMatch);
      if (!user) throw notFound('user');
      return { data: user };
    });
    // A disabled user's sessions and API keys stop working; a new role or password ends their sessions
    // (the database bumps their session epoch) and narrows their keys.
    if (changes.disabled !== undefined || changes.role !== undefined || passwordHash !== undefined) app.credentialsChanged();
    return reply;
  });

  app.delete('/users/:id', {
    schema: { tags, summary: 'Delete a user (and their API keys)', params: IdParams, response: { 204: NoContent } },
    config: { scope: 'users.write' },
  }, async (request, reply) => {
    const { id } = request.params;
    if (id === request.principal.userId) throw conflict('you cannot delete your own user');
    await reply.commit(204, async (db) => {
      if (!(await createUserRepository(db).delete(id, request.ifMatch))) throw notFound('user');
    });
    app.credentialsChanged();
    return reply;
  });
};
