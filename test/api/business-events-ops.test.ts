import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outboxMailTransport, type MailTransport } from '../../services/api/mail.js';
import { createLogger } from '../../services/shared/log.js';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { dataUrl, pngBytes } from '../support/images.js';
import { CHECKLIST } from '../support/inspections.js';
import { GeofenceHarness } from '../geofence/harness.js';

/**
 * quote.created|sent|accepted and inspection.submitted go through the outbox: written in the
 * transaction of the change, relayed to `events:{tenant}` after commit, with the object as the API
 * answered it — and nothing for a change that rolled back.
 */
let db: TestDatabase;
let api: TestApi;
let h: GeofenceHarness;
let org: TestOrg;
let token: string;

/** The default transport, except that one address makes it fail (as a mail server refusing it would). */
const outbox = outboxMailTransport(createLogger('silent'));
const flakyMail: MailTransport = {
  send: async (db, message) => {
    if (message.to === 'bounce@example.com') throw new Error('the mail transport is down');
    return outbox.send(db, message);
  },
};

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config, { mail: flakyMail });
  h = new GeofenceHarness(db);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await h?.close();
  await db?.drop();
});

const post = (url: string, payload?: object) =>
  api.sut.inject({ method: 'POST', url, headers: bearer(token), ...(payload ? { payload } : {}) });

describe('business events of quotes and inspections', () => {
  it('reach the Redis stream through the outbox relay, with the object as answered', async () => {
    const relay = h.startRelay();
    const created = await post('/v1/quotes', { title: 'Events', items: [{ kind: 'labour', description: 'Visit', quantity: 1, unit_price: 9000, tax_rate: 21 }] });
    const quote = created.json().data;
    const sent = await post(`/v1/quotes/${quote.id}/send`, { to: 'buyer@example.com' });
    const accepted = await post(`/v1/quotes/${quote.id}/accept`, { signed_by: 'Buyer', signature: dataUrl(pngBytes(32)) });
    expect(accepted.statusCode).toBe(200);

    // A send whose mail cannot be handed over rolls back: the quote stays a draft and no quote.sent is written.
    const other = (await post('/v1/quotes', { items: [{ kind: 'part', description: 'Belt', quantity: 1, unit_price: 100, tax_rate: 0 }] })).json().data;
    const failed = await post(`/v1/quotes/${other.id}/send`, { to: 'bounce@example.com' });
    expect(failed.statusCode).toBe(500);
    expect((await api.sut.inject({ method: 'GET', url: `/v1/quotes/${other.id}`, headers: bearer(token) })).json().data).toMatchObject({ stage: 'draft', version: 1 });

    const template = (await post('/v1/inspection-templates', CHECKLIST)).json().data;
    const asset = (await post('/v1/assets', { name: 'Forklift' })).json().data;
    const submitted = await post('/v1/inspection-forms', {
      template_id: template.id, asset_id: asset.id, answers: { brakes_ok: true, hours: 3, front: dataUrl(pngBytes(16)) }, signed_by: 'Sam', signature: dataUrl(pngBytes(8)),
    });
    expect(submitted.statusCode).toBe(201);

    await h.published(org.id);
    const streamed = await h.streamedEvents(org.id);
    const business = streamed.filter((e) => e.event.startsWith('quote.') || e.event.startsWith('inspection.'));
    expect(business.map((e) => [e.event, (e.data as { id: string }).id])).toEqual([
      ['quote.created', quote.id], ['quote.sent', quote.id], ['quote.accepted', quote.id], ['quote.created', other.id],
      ['inspection.submitted', submitted.json().data.id],
    ]);
    expect(business[0]!.data).toEqual(created.json().data);
    expect(business[1]!.data).toEqual(sent.json().data);
    expect(business[2]!.data).toEqual(accepted.json().data);
    expect(business[2]!.data).toMatchObject({ stage: 'accepted', acceptance: { signed_by: 'Buyer' } });
    expect(business[4]!).toMatchObject({ tenant_id: org.id, occurred_at: expect.any(String), data: submitted.json().data });
    // The event log finds the inspection by its asset.
    const byAsset = await api.sut.inject({ method: 'GET', url: `/v1/events?asset_id=${asset.id}`, headers: bearer(token) });
    expect(byAsset.json().data.map((e: { event: string }) => e.event)).toEqual(['inspection.submitted']);
    await relay.close();
  });
});
