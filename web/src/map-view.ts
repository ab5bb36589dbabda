import * as L from 'leaflet';
import type { Geofence } from './api.js';
import { statusOf, type Track } from './fleet.js';
import { ago, coordinates, escapeHtml, heading, speed } from './format.js';

const FENCE_COLORS: Record<Geofence['kind'], string> = { site: '#2563eb', restricted: '#dc2626', zone: '#d97706' };

export interface MapOptions {
  /** A tile URL template; without one the map is a plain background with a coordinate grid (works offline). */
  tileUrl: string | null;
  tileAttribution: string | null;
}

/** The Leaflet map: a marker per track that moves with each position, and the tenant's geofences. */
export class FleetMap {
  readonly map: L.Map;
  private readonly markers = new Map<string, L.Marker>();
  private readonly fences = L.featureGroup();
  private readonly graticule = L.layerGroup();
  private hasView = false;

  constructor(element: HTMLElement, options: MapOptions) {
    this.map = L.map(element, { zoomControl: true, worldCopyJump: true, preferCanvas: false, attributionControl: Boolean(options.tileUrl) });
    this.map.setView([20, 0], 2);
    if (options.tileUrl) {
      L.tileLayer(options.tileUrl, { maxZoom: 19, attribution: options.tileAttribution ?? '' }).addTo(this.map);
    } else {
      element.classList.add('no-tiles');
      this.graticule.addTo(this.map);
      this.map.on('moveend', () => this.drawGraticule());
      this.drawGraticule();
    }
    L.control.scale({ imperial: false }).addTo(this.map);
    this.fences.addTo(this.map);
  }

  setFences(geofences: Geofence[]): void {
    this.fences.clearLayers();
    for (const fence of geofences) {
      const layer = fenceLayer(fence);
      if (!layer) continue;
      layer.bindTooltip(`${escapeHtml(fence.name)} · ${fence.kind}`, { sticky: true });
      this.fences.addLayer(layer);
    }
  }

  /** Places or moves the track's marker; the first track with a position sets the view when nothing did. */
  show(track: Track): void {
    if (track.lat === null || track.lon === null) return;
    const at = L.latLng(track.lat, track.lon);
    let marker = this.markers.get(track.key);
    if (!marker) {
      marker = L.marker(at, { icon: markerIcon(), keyboard: true, title: track.name, riseOnHover: true });
      marker.bindTooltip('', { direction: 'top', offset: [0, -14] });
      marker.addTo(this.map);
      this.markers.set(track.key, marker);
    } else {
      marker.setLatLng(at);
    }
    decorate(marker, track);
    if (!this.hasView) {
      this.map.setView(at, 15);
      this.hasView = true;
    }
  }

  /** Refreshes "seen … ago" and the online status of every marker. */
  refresh(tracks: Iterable<Track>): void {
    for (const track of tracks) {
      const marker = this.markers.get(track.key);
      if (marker) decorate(marker, track);
    }
  }

  alert(key: string): void {
    const element = this.markers.get(key)?.getElement();
    if (!element) return;
    element.classList.remove('alert');
    void element.offsetWidth; // restarts the animation
    element.classList.add('alert');
  }

  focus(track: Track): void {
    const marker = this.markers.get(track.key);
    if (!marker) return;
    this.map.setView(marker.getLatLng(), Math.max(this.map.getZoom(), 15));
    marker.openTooltip();
  }

  /** Frames every marker and fence, once the first paint has them. */
  fitAll(): void {
    const bounds = L.latLngBounds([]);
    for (const marker of this.markers.values()) bounds.extend(marker.getLatLng());
    if (this.fences.getLayers().length) bounds.extend(this.fences.getBounds());
    if (!bounds.isValid()) return;
    this.map.fitBounds(bounds.pad(0.15), { maxZoom: 16 });
    this.hasView = true;
  }

  /** Lines of latitude and longitude at a spacing that suits the zoom: orientation without tiles. */
  private drawGraticule(): void {
    this.graticule.clearLayers();
    const bounds = this.map.getBounds().pad(0.5);
    const span = Math.max(bounds.getNorth() - bounds.getSouth(), 1e-6);
    const step = [30, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005].find((s) => span / s >= 6) ?? 0.0005;
    const style: L.PolylineOptions = { color: '#c5ced8', weight: 1, interactive: false };
    const south = Math.max(-85, Math.floor(bounds.getSouth() / step) * step);
    const north = Math.min(85, bounds.getNorth());
    const west = Math.floor(bounds.getWest() / step) * step;
    const east = bounds.getEast();
    for (let lat = south; lat <= north; lat += step) this.graticule.addLayer(L.polyline([[lat, bounds.getWest()], [lat, east]], style));
    for (let lon = west; lon <= east; lon += step) this.graticule.addLayer(L.polyline([[south, lon], [north, lon]], style));
  }
}

function markerIcon(): L.DivIcon {
  return L.divIcon({
    className: 'asset-marker',
    iconSize: [28, 28],
    iconAnchor: [14, 14],
    html: '<svg class="arrow" viewBox="0 0 28 28" aria-hidden="true"><circle class="dot" cx="14" cy="14" r="7"/><path class="pointer" d="M14 1 L21 20 L14 15.5 L7 20 Z"/></svg><span class="marker-label"></span>',
  });
}

function decorate(marker: L.Marker, track: Track): void {
  const element = marker.getElement();
  if (element) {
    const status = statusOf(track);
    element.dataset.key = track.key;
    element.dataset.status = status;
    element.dataset.lat = String(track.lat);
    element.dataset.lon = String(track.lon);
    element.classList.toggle('has-heading', track.headingDeg !== null);
    const arrow = element.querySelector<SVGElement>('.arrow');
    if (arrow) arrow.style.transform = `rotate(${track.headingDeg ?? 0}deg)`;
    const label = element.querySelector<HTMLElement>('.marker-label');
    if (label) label.textContent = track.name;
    element.title = track.name;
  }
  const details = [coordinates(track.lat!, track.lon!), speed(track.speedMps), heading(track.headingDeg), `seen ${ago(track.seenAtMs)}`].filter(Boolean);
  marker.setTooltipContent(`<strong>${escapeHtml(track.name)}</strong><br>${details.map(escapeHtml).join(' · ')}`);
}

function fenceLayer(fence: Geofence): L.Layer | null {
  const color = FENCE_COLORS[fence.kind] ?? '#64748b';
  const style = { color, weight: 2, fillColor: color, fillOpacity: fence.kind === 'restricted' ? 0.18 : 0.1, dashArray: fence.kind === 'zone' ? '6 4' : undefined };
  const geometry = fence.geometry;
  if (geometry.type === 'Point' && fence.radius_m) {
    const [lon, lat] = geometry.coordinates as [number, number];
    return L.circle([lat, lon], { ...style, radius: fence.radius_m });
  }
  if (geometry.type === 'LineString') {
    // A corridor: drawn as its centre line, wide enough to read at street zoom.
    return L.polyline((geometry.coordinates as [number, number][]).map(([lon, lat]) => [lat, lon] as [number, number]), { color, weight: 6, opacity: 0.6 });
  }
  if (geometry.type === 'Polygon' || geometry.type === 'MultiPolygon') return L.geoJSON(geometry, { style: () => style });
  return null;
}
