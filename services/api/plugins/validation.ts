import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fastJsonStringify from 'fast-json-stringify';
import fp from 'fastify-plugin';

// ajv-formats is CommonJS with a default export; under NodeNext the import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as
  (ajv: Ajv) => Ajv;

/**
 * Route schemas validate input (TypeBox objects are JSON Schema). JSON bodies are checked as sent:
 * `"42"` is not a number and unknown fields are errors, not silently dropped. Query strings and path
 * parameters are text by nature, so they are coerced (`?limit=10` is the integer 10). Every problem is
 * reported at once, so a client fixes its request in one round trip. Answers are serialized by their
 * route's response schema (fast-json-stringify), which also drops fields the schema does not name.
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
    // Many routes share a schema (an id parameter, an object answered by every action of a resource):
    // each distinct one is compiled once, which keeps the start of a process short as resources grow.
    const compiled = new Map<string, ValidateFunction>();
    app.setValidatorCompiler(({ schema, httpPart }) => {
      const part = (httpPart ?? 'body') as keyof typeof validators;
      const key = `${part} ${JSON.stringify(schema)}`;
      let validate = compiled.get(key);
      if (!validate) {
        validate = (validators[part] ?? validators.body).compile(schema);
        compiled.set(key, validate);
      }
      return validate;
    });
    const serializers = new Map<string, (payload: unknown) => string>();
    app.setSerializerCompiler(({ schema }) => {
      const key = JSON.stringify(schema);
      let serialize = serializers.get(key);
      if (!serialize) {
        serialize = fastJsonStringify(schema as Parameters<typeof fastJsonStringify>[0]) as (payload: unknown) => string;
        serializers.set(key, serialize);
      }
      return serialize;
    });
  },
  { name: 'fieldops-validation' },
);
