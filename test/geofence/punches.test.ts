import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PunchRecord } from '../../services/shared/contracts/stream-codec.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createDevice, createEmployee, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { GeofenceHarness, insertFence, square } from './harness.js';

let db: TestDatabase;
let h: GeofenceHarness;
let org: TestOrg;
let depot: string;
let yard: string;
let clock: TestDevice;
let employee: string;

const LON = -3.7;
const LAT = 40.42;
let ts = Date.parse('2025-04-01T07:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  h = new GeofenceHarness(db);
  org = await createOrg(db.owner);
  depot = await insertFence(db.owner, org.id, { kind: 'site', name: 'Depot', geometry: { type: 'Polygon', coordinates: [square(LON, LAT, 0.001)] } });
  // A yard overlapping the depot's eastern half.
  yard = await insertFence(db.owner, org.id, { kind: 'site', name: 'Yard', geometry: { type: 'Point', coordinates: [LON + 0.0008, LAT] }, radius_m: 80 });
  await insertFence(db.owner, org.id, { kind: 'zone', name: 'Not a site', geometry: { type: 'Point', coordinates: [LON + 0.01, LAT] }, radius_m: 500 });
  clock = await createDevice(db.owner, org.id, { kind: 'attendance', siteId: yard });
  employee = await createEmployee(db.owner, org.id, { name: 'Grace', badge_code: 'B-1001' });
  await h.startWorker();
  h.startRelay();
});

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

/** Stores a punch as ingest does (a row, then a stream entry), waits for verification, returns its event and row. */
async function punch(fields: { employeeRef: string; kind?: 'in' | 'out'; lon?: number | null; lat?: number | null; accuracyM?: number | null; device?: TestDevice }) {
  const device = fields.device ?? clock;
  const tsMs = (ts += 60_000);
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into punches (tenant_id, device_id, site_id, ts, employee_ref, kind, lat, lon, accuracy_m)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
    [org.id, device.id, device.siteId, new Date(tsMs), fields.employeeRef, fields.kind ?? 'in', fields.lat ?? null, fields.lon ?? null, fields.accuracyM ?? null],
  );
  const record: PunchRecord = {
    id: rows[0]!.id, tenant_id: org.id, device_id: device.id, site_id: device.siteId, ts_ms: tsMs, employee_ref: fields.employeeRef,
    kind: fields.kind ?? 'in', lat: fields.lat ?? null, lon: fields.lon ?? null, accuracy_m: fields.accuracyM ?? null,
  };
  await h.publishPunches([record]);
  await h.drained([h.streams.punches]);
  const [event] = await h.events(org.id, "data->>'punch_id' = $1", [record.id]);
  const { rows: stored } = await db.owner.query('select employee_id, gps_verified, verified_site_id, distance_m from punches where id = $1', [record.id]);
  return { event: event!, row: stored[0], record };
}

describe('punch verification', () => {
  it('a punch inside a site is verified with that site, evented and recorded on the punch', async () => {
    const device = await createDevice(db.owner, org.id, { kind: 'attendance' });
    const { event, row } = await punch({ employeeRef: 'B-1001', lon: LON - 0.0005, lat: LAT, accuracyM: 5, device });
    expect(event.type).toBe('employee.punched_in');
    expect(event.employee_id).toBe(employee);
    expect(event.data).toMatchObject({
      employee_id: employee, device_id: device.id, kind: 'in', gps_verified: true, site_id: depot, distance_m: 0,
      lat: LAT, lon: LON - 0.0005, unknown_employee: false,
    });
    expect(row).toEqual({ employee_id: employee, gps_verified: true, verified_site_id: depot, distance_m: 0 });
  });

  it('where sites overlap, the device\'s own site is preferred', async () => {
    const { event } = await punch({ employeeRef: employee, kind: 'out', lon: LON + 0.0008, lat: LAT, accuracyM: 5 });
    expect(event.type).toBe('employee.punched_out');
    expect(event.data).toMatchObject({ employee_id: employee, gps_verified: true, site_id: yard });
  });

  it('a device whose site_id names a site (not a fence) has its punches verified against that site\'s fence first', async () => {
    const site = await asTenant(db.owner, org.id, async (c) => (await c.query<{ id: string }>(
      `insert into sites (tenant_id, name, geofence_id) values ($1, 'Yard site', $2) returning id`, [org.id, yard])).rows[0]!.id);
    const device = await createDevice(db.owner, org.id, { kind: 'attendance', siteId: site });
    // Inside the depot and ≈ 30 m outside the yard, within the fix's accuracy of both: the device's site decides.
    const { event, row } = await punch({ employeeRef: 'B-1001', lon: LON - 0.0005, lat: LAT, accuracyM: 40, device });
    expect(event.data).toMatchObject({ gps_verified: true, site_id: yard });
    expect(row).toMatchObject({ verified_site_id: yard });
    const unsited = await createDevice(db.owner, org.id, { kind: 'attendance' });
    const { event: nearest } = await punch({ employeeRef: 'B-1001', lon: LON - 0.0005, lat: LAT, accuracyM: 40, device: unsited });
    expect(nearest.data).toMatchObject({ gps_verified: true, site_id: depot });
  });

  it('a punch just outside a site but within its accuracy radius is verified', async () => {
    // 0.0012° of latitude north of the centre ≈ 22 m beyond the depot's northern edge.
    const { event } = await punch({ employeeRef: 'B-1001', lon: LON - 0.0005, lat: LAT + 0.0012, accuracyM: 40 });
    expect(event.data).toMatchObject({ gps_verified: true, site_id: depot });
    expect(event.data.distance_m).toBeGreaterThan(15);
    expect(event.data.distance_m).toBeLessThan(30);
  });

  it('a punch away from every site is not verified, with the distance to the nearest site', async () => {
    // 0.006° of latitude north of the centre: ≈ 556 m beyond the depot's northern edge.
    const { event, row } = await punch({ employeeRef: 'B-1001', lon: LON - 0.0005, lat: LAT + 0.006, accuracyM: 10 });
    expect(event.data).toMatchObject({ gps_verified: false, site_id: depot });
    expect(event.data.distance_m).toBeGreaterThan(540);
    expect(event.data.distance_m).toBeLessThan(570);
    expect(row).toMatchObject({ gps_verified: false, verified_site_id: depot });
  });

  it('a punch without a position is stored and evented, unverified', async () => {
    const { event } = await punch({ employeeRef: 'B-1001', lon: null, lat: null });
    expect(event.data).toMatchObject({ gps_verified: false, site_id: null, distance_m: null, employee_id: employee });
  });

  it('an unknown employee is flagged and evented, never dropped', async () => {
    const { event, row } = await punch({ employeeRef: 'B-9999', lon: LON, lat: LAT, accuracyM: 5 });
    expect(event.type).toBe('employee.punched_in');
    expect(event.employee_id).toBeNull();
    expect(event.data).toMatchObject({ employee_id: null, employee_ref: 'B-9999', unknown_employee: true, gps_verified: true });
    expect(row).toMatchObject({ employee_id: null, gps_verified: true });
    await h.published(org.id);
    const streamed = (await h.streamedEvents(org.id)).find((e) => e.id === event.id);
    expect(streamed?.data).toMatchObject({ employee_ref: 'B-9999', unknown_employee: true });
  });

  it('another tenant\'s employee with the same badge does not match', async () => {
    const other = await createOrg(db.owner);
    await createEmployee(db.owner, other.id, { badge_code: 'B-7777' });
    const { event } = await punch({ employeeRef: 'B-7777', lon: LON, lat: LAT });
    expect(event.data).toMatchObject({ employee_id: null, unknown_employee: true });
  });
});
