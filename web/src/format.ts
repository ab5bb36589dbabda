/** Times and numbers the way a dispatcher reads them. */

export function ago(ms: number | null, nowMs = Date.now()): string {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export const clock = (iso: string): string => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
};

export const coordinates = (lat: number, lon: number): string => `${lat.toFixed(5)}, ${lon.toFixed(5)}`;

export function speed(mps: number | null): string {
  return mps === null ? '' : `${Math.round(mps * 3.6)} km/h`;
}

const COMPASS = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];
export function heading(deg: number | null): string {
  if (deg === null) return '';
  return `${COMPASS[Math.round((((deg % 360) + 360) % 360) / 45) % 8]} ${Math.round(deg)}°`;
}

/** Text for the DOM: every value the page shows goes through textContent or this. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
