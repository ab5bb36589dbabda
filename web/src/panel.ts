import type { LiveEvent } from './live.js';
import { statusOf, type Fleet, type Track, type TrackStatus } from './fleet.js';
import { ago, clock, coordinates, heading, speed } from './format.js';

const STATUS_LABEL: Record<TrackStatus, string> = { moving: 'moving', stopped: 'stopped', offline: 'offline', 'no-fix': 'no fix yet' };

/** The side panel's list of assets with their status, last-seen time and position. */
export class AssetList {
  private readonly rows = new Map<string, HTMLLIElement>();

  constructor(private readonly list: HTMLElement, private readonly count: HTMLElement, private readonly onSelect: (track: Track) => void) {}

  show(track: Track): void {
    let row = this.rows.get(track.key);
    if (!row) {
      row = document.createElement('li');
      row.className = 'asset';
      row.tabIndex = 0;
      row.dataset.key = track.key;
      row.innerHTML = '<span class="status-dot"></span><span class="asset-name"></span><span class="asset-status"></span><span class="asset-where"></span><span class="asset-seen"></span>';
      row.addEventListener('click', () => this.onSelect(track));
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter') this.onSelect(track); });
      this.rows.set(track.key, row);
      this.insertSorted(row, track.name);
      this.count.textContent = String(this.rows.size);
    }
    const status = statusOf(track);
    row.dataset.status = status;
    row.querySelector('.asset-name')!.textContent = track.name;
    row.querySelector('.asset-status')!.textContent = [STATUS_LABEL[status], speed(track.speedMps), heading(track.headingDeg)].filter(Boolean).join(' · ');
    row.querySelector('.asset-where')!.textContent = track.lat !== null && track.lon !== null ? coordinates(track.lat, track.lon) : '';
    row.querySelector('.asset-seen')!.textContent = `seen ${ago(track.seenAtMs)}`;
  }

  flash(key: string): void {
    const row = this.rows.get(key);
    if (!row) return;
    row.classList.remove('flash');
    void row.offsetWidth;
    row.classList.add('flash');
  }

  private insertSorted(row: HTMLLIElement, name: string): void {
    const after = [...this.list.children].find((other) => (other.querySelector('.asset-name')?.textContent ?? '').localeCompare(name) > 0);
    this.list.insertBefore(row, after ?? null);
  }
}

const EVENT_LABEL: Record<string, string> = {
  'asset.geofence_breach': 'Geofence breach',
  'asset.geofence_entered': 'Entered geofence',
  'asset.geofence_exited': 'Left geofence',
  'employee.punched_in': 'Punched in',
  'employee.punched_out': 'Punched out',
  'work_order.created': 'Work order created',
  'work_order.assigned': 'Work order assigned',
  'work_order.started': 'Work order started',
  'work_order.completed': 'Work order completed',
  'quote.created': 'Quote created',
  'quote.sent': 'Quote sent',
  'quote.accepted': 'Quote accepted',
  'inspection.submitted': 'Inspection submitted',
};

const MAX_EVENTS = 200;

/** The side panel's feed of live events, newest first; breaches stand out. */
export class EventFeed {
  private shown = 0;

  constructor(private readonly list: HTMLElement, private readonly count: HTMLElement, private readonly empty: HTMLElement, private readonly fleet: Fleet) {}

  add(event: LiveEvent): void {
    const item = document.createElement('li');
    item.className = 'event';
    item.dataset.event = event.event;
    item.dataset.id = event.id;
    if (event.event === 'asset.geofence_breach') item.classList.add('breach');
    const time = document.createElement('time');
    time.dateTime = event.occurred_at;
    time.textContent = clock(event.occurred_at);
    const title = document.createElement('strong');
    title.textContent = EVENT_LABEL[event.event] ?? event.event;
    const detail = document.createElement('span');
    detail.className = 'event-detail';
    detail.textContent = describe(event, this.fleet);
    item.append(time, title, detail);
    this.list.prepend(item);
    while (this.list.children.length > MAX_EVENTS) this.list.lastElementChild!.remove();
    this.count.textContent = String(++this.shown);
    this.empty.hidden = true;
  }
}

function describe(event: LiveEvent, fleet: Fleet): string {
  const data = event.data;
  const text = (key: string) => (typeof data[key] === 'string' ? (data[key] as string) : null);
  const parts = [
    fleet.nameOf(data.asset_id, data.device_id),
    text('geofence_name'),
    text('title') ?? text('name'),
    text('employee_ref') && `employee ${text('employee_ref')}`,
  ].filter((part): part is string => Boolean(part));
  return parts.join(' · ');
}
