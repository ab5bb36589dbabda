import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/shared/config.js';

/** DESIGN's "unset = embedded": how DATABASE_URL and REDIS_URL are read. */
describe('the configuration of the database and the bus', () => {
  const saved = { DATABASE_URL: process.env.DATABASE_URL, REDIS_URL: process.env.REDIS_URL, DATA_DIR: process.env.DATA_DIR, JWT_SECRET: process.env.JWT_SECRET };
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('leaves both unset by default: the embedded database and the in-process bus', () => {
    const config = loadConfig({ DATA_DIR: '/tmp/fieldops-config-test', JWT_SECRET: 'x'.repeat(32) });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.serviceDatabaseUrls).toBeNull();
  });

  it('reads an empty value as unset', () => {
    const config = loadConfig({ DATABASE_URL: '', REDIS_URL: '', DATA_DIR: '/tmp/fieldops-config-test', JWT_SECRET: 'x'.repeat(32) });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
  });

  it('reads only the environment it is given', () => {
    process.env.DATABASE_URL = 'postgres://someone@db.example:5432/other';
    process.env.REDIS_URL = 'redis://cache.example:6379';
    process.env.DATA_DIR = '/tmp/fieldops-config-test';
    process.env.JWT_SECRET = 'y'.repeat(32);
    expect(loadConfig({ DATA_DIR: '/tmp/fieldops-config-test', JWT_SECRET: 'x'.repeat(32) }).DATABASE_URL).toBeUndefined();
    const fromProcess = loadConfig();
    expect(fromProcess.DATABASE_URL).toBe('postgres://someone@db.example:5432/other');
    expect(fromProcess.serviceDatabaseUrls?.api).toBe('postgres://fieldops_api@db.example:5432/other');
  });

  it('names a malformed URL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x', DATA_DIR: '/tmp/fieldops-config-test', JWT_SECRET: 'x'.repeat(32) }))
      .toThrow(/DATABASE_URL must match pattern/);
  });
});
