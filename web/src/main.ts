import 'leaflet/dist/leaflet.css';
import './styles.css';
import { Api, ApiError, fetchMapConfig, signIn, type Asset, type Device, type Geofence, type MapConfig } from './api.js';
import { Fleet } from './fleet.js';
import { LiveConnection, type LiveState } from './live.js';
import { FleetMap } from './map-view.js';
import { AssetList, EventFeed } from './panel.js';
import { clearSession, loadSession, saveSession, type Session } from './session.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The live socket's URL: configured for the deployment, else the realtime port on this page's host. */
function liveUrl(config: MapConfig): string {
  if (config.realtime_url) return config.realtime_url;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.hostname}:${config.realtime_port ?? 8081}/v1/live`;
}

function showLogin(message?: string): void {
  $('app').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.textContent = message ?? '';
  error.hidden = !message;
}

function bindLogin(onSession: (session: Session) => void): void {
  const failed = (err: unknown) => showLogin(err instanceof ApiError && err.status === 401 ? 'Wrong email, password or organization.' : `Sign-in failed: ${(err as Error).message}`);
  $<HTMLFormElement>('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    signIn(String(form.get('email')), String(form.get('password')), String(form.get('organization_id')).trim())
      .then(({ token, expires_at }) => onSession({ token, kind: 'session', expiresAt: expires_at }), failed);
  });
  $<HTMLFormElement>('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = String(new FormData(e.target as HTMLFormElement).get('key')).trim();
    onSession({ token: key, kind: 'api_key', expiresAt: null });
  });
}

function showConnection(state: LiveState): void {
  const pill = $('connection');
  const banner = $('banner');
  pill.dataset.state = state.state;
  if (state.state === 'live') {
    pill.textContent = 'live';
    banner.hidden = true;
  } else if (state.state === 'connecting') {
    pill.textContent = 'connecting…';
  } else {
    pill.textContent = 'disconnected';
    $('banner-text').textContent = `Disconnected from live updates (${state.reason}). Reconnecting in ${Math.ceil(state.retryInMs / 1000)} s…`;
    banner.hidden = false;
  }
}

/** Signed in: first paint from the REST API, then live positions and events over the socket. */
async function openWorkspace(session: Session, config: MapConfig, signOut: (message?: string) => void): Promise<() => void> {
  const api = new Api(session.token);
  // A key or role without devices.read still sees the live positions; first paint is then empty.
  const [devices, assets, geofences] = await Promise.all([
    api.listIfAvailable<Device>('/v1/devices'),
    api.listIfAvailable<Asset>('/v1/assets'),
    api.listIfAvailable<Geofence>('/v1/geofences'),
  ]);
  $('login').hidden = true;
  $('app').hidden = false;

  const fleet = new Fleet();
  fleet.load(devices, assets);
  const map = new FleetMap($('map'), { tileUrl: config.tile_url, tileAttribution: config.tile_attribution });
  // The Leaflet map, for the browser console and the browser test.
  (window as unknown as { fieldopsMap: unknown }).fieldopsMap = map.map;
  const assetList = new AssetList($('asset-list'), $('asset-count'), (track) => map.focus(track));
  const events = new EventFeed($('event-list'), $('event-count'), $('events-empty'), fleet);
  map.setFences(geofences);
  for (const track of fleet.tracks.values()) {
    map.show(track);
    assetList.show(track);
  }
  map.fitAll();

  const live = new LiveConnection(liveUrl(config), session.token, {
    position(position) {
      const track = fleet.apply(position);
      if (!track) return;
      map.show(track);
      assetList.show(track);
    },
    event(event) {
      events.add(event);
      const key = typeof event.data.asset_id === 'string' ? event.data.asset_id : typeof event.data.device_id === 'string' ? event.data.device_id : null;
      if (key && event.event === 'asset.geofence_breach') {
        map.alert(key);
        assetList.flash(key);
      }
    },
    state: showConnection,
    resumed() {
      // Positions are not replayed: repaint from the devices' last positions.
      api.listAll<Device>('/v1/devices').then((fresh) => {
        fleet.load(fresh, []);
        for (const track of fleet.tracks.values()) {
          map.show(track);
          assetList.show(track);
        }
      }, () => {});
    },
    unauthorized: () => signOut('Your session has ended. Please sign in again.'),
  }, () => api.get('/v1/me').then(() => true, (err) => !(err instanceof ApiError && err.status === 401)));
  live.start();
  $('reconnect').onclick = () => live.reconnectNow();

  const ticker = window.setInterval(() => {
    for (const track of fleet.tracks.values()) assetList.show(track);
    map.refresh(fleet.tracks.values());
  }, 5000);
  return () => {
    live.stop();
    window.clearInterval(ticker);
    map.map.remove();
  };
}

async function main(): Promise<void> {
  const config = await fetchMapConfig();
  let closeWorkspace: (() => void) | null = null;
  const signOut = (message?: string) => {
    closeWorkspace?.();
    closeWorkspace = null;
    clearSession();
    $('asset-list').replaceChildren();
    $('event-list').replaceChildren();
    $('asset-count').textContent = '0';
    $('event-count').textContent = '0';
    $('events-empty').hidden = false;
    $('banner').hidden = true;
    showLogin(message);
  };
  const start = (session: Session) => {
    openWorkspace(session, config, signOut).then(
      (close) => {
        saveSession(session);
        closeWorkspace = close;
      },
      (err) => signOut(err instanceof ApiError && err.status === 401 ? 'That token or key was not accepted.' : `Could not load the fleet: ${(err as Error).message}`),
    );
  };
  bindLogin(start);
  $('logout').addEventListener('click', () => signOut());
  const session = loadSession();
  if (session) start(session);
  else showLogin();
}

void main().catch((err) => showLogin(`The map could not start: ${(err as Error).message}`));
