import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '../schemas.js';

export const OPENAPI_PATH = '/v1/openapi.json';
export const DOCS_PATH = '/v1/docs';

type Operation = { responses?: Record<string, unknown> };

/** The write headers of docs/design.md, "REST conventions", as documented request headers. */
function writeHeaders(method: string | string[], url: string, idempotent: boolean | 'sealed' | undefined) {
  const methods = Array.isArray(method) ? method : [method];
  const properties: Record<string, TSchema> = {};
  if (idempotent) {
    properties['idempotency-key'] = Type.Optional(Type.String({
      maxLength: 255,
      description: 'Repeated within 24 h, the request answers its first result (same status and body, `Idempotent-Replayed: true`) '
        + 'and changes nothing more; the same key with another request is 409.',
    }));
  }
  if (url.includes('/:id') && methods.some((m) => m === 'PATCH' || m === 'DELETE' || m === 'POST')) {
    properties['if-match'] = Type.Optional(Type.String({
      description: 'The ETag (`"<version>"`) of the object as you last saw it: if it has changed since, 409 and nothing is written.',
    }));
  }
  return Object.keys(properties).length ? Type.Object(properties) : null;
}

/**
 * OpenAPI 3 generated from the route schemas (the single source of truth), served at
 * `/v1/openapi.json`, and Swagger UI at `/v1/docs`. Must be registered before the routes it documents.
 */
export const docsPlugin = fp<{ version: string }>(
  async (app, { version }) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'fieldops API',
          version,
          description:
            'Telemetry and operations for field-service companies. Authenticate with `Authorization: Bearer <token>`, '
            + 'where the token is a session JWT from `POST /v1/auth/token` or an API key (`fo_…`). '
            + 'Lists take `limit` (default 50, max 100), `offset` or `cursor`, and `sort=field|-field`.',
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'A session JWT or an API key (fo_…)' },
          },
        },
        security: [{ bearer: [] }],
      },
      transform: ({ schema, url, route }) => {
        const documented = { ...(schema as Record<string, unknown>) };
        if (route.config?.public) documented.security = [];
        if (route.config?.scope) {
          const note = `Needs the \`${route.config.scope}\` scope.`;
          documented.description = documented.description ? `${String(documented.description)}\n\n${note}` : note;
        }
        const headers = writeHeaders(route.method, url, route.config?.idempotent);
        if (headers) documented.headers = headers;
        return { schema: documented as typeof schema, url };
      },
      transformObject: (documents) => {
        if (!('openapiObject' in documents)) return documents.swaggerObject;
        const doc = documents.openapiObject;
        doc.components = {
          ...doc.components,
          responses: {
            ...doc.components?.responses,
            Error: { description: 'Error (the status says which)', content: { 'application/json': { schema: ErrorResponse } } },
          },
        };
        for (const path of Object.values(doc.paths ?? {})) {
          for (const operation of Object.values(path as Record<string, Operation>)) {
            if (operation && typeof operation === 'object' && operation.responses) {
              operation.responses.default ??= { $ref: '#/components/responses/Error' };
            }
          }
        }
        return doc;
      },
    });
    await app.register(swaggerUi, { routePrefix: DOCS_PATH, uiConfig: { deepLinking: true } });
    app.get(OPENAPI_PATH, { config: { rateLimit: false }, schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'fieldops-docs' },
);
