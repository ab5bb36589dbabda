import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fp from 'fastify-plugin';

// ajv-formats is CommonJS with a default export; under NodeNext the import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as
  (ajv: Ajv) => Ajv;

/**
 * Route schemas validate input (TypeBox objects are JSON Schema). JSON bodies are checked as sent:
 * `"42"` is not a number and unknown fields are errors, not silently dropped. Query strings and path
 * parameters are text by nature, so they are coerced (`?limit=10` is the integer 10). Every problem is
 * reported at once, so a client fixes its request in one round trip.
 */
export const validationPlugin = fp(
  async (app) => {
    const base: Options = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false };
    const validators = {
      body: addFormats(new Ajv({ ...base, coerceTypes: false })),
      querystring: addFormats(new Ajv({ ...base, coerceTypes: 'array' })),
      params: addFormats(new Ajv({ ...base, coerceTypes: true })),
      headers: addFormats(new Ajv({ ...base, coerceTypes: true })),
    };
    app.setValidatorCompiler(({ schema, httpPart }) => {
      const ajv = validators[(httpPart ?? 'body') as keyof typeof validators] ?? validators.body;
      return ajv.compile(schema);
    });
  },
  { name: 'fieldops-validation' },
);
