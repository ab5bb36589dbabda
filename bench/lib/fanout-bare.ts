/**
 * bench/fanout.ts's reference: a bare uWebSockets.js app whose sockets all subscribe to one topic,
 * and a loop publishing position-sized messages as fast as the sockets take them.
 */
import uWS from 'uWebSockets.js';

const TOPIC = 'bare';
const BATCH = 20;
const HIGH_WATER_BYTES = 512 * 1024;
const sockets = new Set<uWS.WebSocket<object>>();
let publishing = false;

const app = uWS.App().ws<object>('/*', {
  idleTimeout: 0,
  maxBackpressure: 64 * 1024 * 1024,
  open: (ws) => {
    ws.subscribe(TOPIC);
    sockets.add(ws);
  },
  close: (ws) => sockets.delete(ws),
});

function message(): string {
  return JSON.stringify({ type: 'position', asset_id: '6f1c2b9e-8d4a-4f7e-9c3b-2a1d5e8f7b60', device_id: '0b7e4c1a-3f2d-4e9b-8a6c-5d1f2e3a4b7c',
    ts: new Date().toISOString(), lat: 46.948123, lon: 7.447456, speed_mps: 12.5, heading_deg: 270 });
}

/** Publishes in small batches, yielding to uWS between them and waiting while a socket lags far behind. */
function publishLoop(): void {
  if (!publishing) return;
  const probe = sockets.values().next().value;
  if (probe && probe.getBufferedAmount() > HIGH_WATER_BYTES) {
    setTimeout(publishLoop, 1);
    return;
  }
  for (let i = 0; i < BATCH; i++) app.publish(TOPIC, message());
  setImmediate(publishLoop);
}

app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) throw new Error('bare: cannot listen');
  process.send!({ port: uWS.us_socket_local_port(socket) });
});

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'start') {
    publishing = true;
    publishLoop();
  } else if (m.cmd === 'stop') {
    publishing = false;
    process.send!({ stopped: true });
  } else if (m.cmd === 'exit') {
    process.exit(0);
  }
});
