import type { Geometry } from 'geojson';

/** The REST calls the page makes (docs/design.md, "REST API"), with the dispatcher's bearer token. */

export interface MapConfig {
  realtime_url: string | null;
  realtime_port: number | null;
  tile_url: string | null;
  tile_attribution: string | null;
}

export interface LastPosition {
  ts: string | null;
  lat: number;
  lon: number;
  speed_mps: number | null;
  heading_deg: number | null;
}

export interface Device {
  id: string;
  name: string;
  kind: 'tracker' | 'attendance';
  asset_id: string | null;
  status?: string;
  last_seen_at?: string | null;
  last_position?: LastPosition | null;
}

export interface Asset {
  id: string;
  name: string;
}

export interface Geofence {
  id: string;
  name: string;
  kind: 'site' | 'restricted' | 'zone';
  geometry: Geometry;
  radius_m?: number | null;
  width_m?: number | null;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function parse<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body as T;
}

export async function fetchMapConfig(): Promise<MapConfig> {
  return parse<MapConfig>(await fetch('/map/config.json', { cache: 'no-store' }));
}

export async function signIn(email: string, password: string, organizationId: string): Promise<{ token: string; expires_at: string }> {
  const res = await fetch('/v1/auth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, organization_id: organizationId }),
  });
  return (await parse<{ data: { token: string; expires_at: string } }>(res)).data;
}

interface ListPage<T> {
  data: T[];
  meta?: { total?: number; limit?: number; offset?: number; next_cursor?: string | null };
}

const PAGE_SIZE = 100;
const MAX_PAGES = 50;

export class Api {
  constructor(private readonly token: string) {}

  async get<T>(path: string): Promise<T> {
    return parse<T>(await fetch(path, { headers: { authorization: `Bearer ${this.token}` } }));
  }

  /** Every item of a list, following `next_cursor` (or offsets) page by page. */
  async listAll<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let query = `limit=${PAGE_SIZE}`;
    for (let page = 0; page < MAX_PAGES; page++) {
      const { data, meta } = await this.get<ListPage<T>>(`${path}?${query}`);
      items.push(...data);
      if (data.length < PAGE_SIZE) break;
      if (meta?.next_cursor) query = `limit=${PAGE_SIZE}&cursor=${encodeURIComponent(meta.next_cursor)}`;
      else if (meta?.total !== undefined && items.length < meta.total) query = `limit=${PAGE_SIZE}&offset=${items.length}`;
      else break;
    }
    return items;
  }

  /** A list the deployment may not offer (yet): an empty list instead of a failure for 404 (and 403). */
  async listIfAvailable<T>(path: string): Promise<T[]> {
    try {
      return await this.listAll<T>(path);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) return [];
      throw err;
    }
  }
}
