import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** What the bridge needs of a PGlite instance (any PGlite build: the TimescaleDB one included). */
export interface WireBackend {
  waitReady: Promise<void>;
  query<T>(sql: string): Promise<{ rows: T[] }>;
  execProtocolRaw(message: Uint8Array): Promise<Uint8Array>;
}

export interface WireServer {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`, for `pg` and for our migration runner. */
  url(database?: string): string;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const TERMINATE = 0x58; // 'X'

/**
 * Serves a PGlite instance over the PostgreSQL wire protocol on 127.0.0.1 (a free port), so that
 * the real `pg` driver and the real migration runner talk to it as to a server.
 *
 * PGlite is one backend with one session. Connections therefore take turns: a connection waits
 * until the previous one has closed, and a closing connection's session is reset (its transaction
 * rolled back, `DISCARD ALL`: role, settings, prepared statements, locks) before the next one starts, as
 * if it had been a fresh backend. Only whole messages are handed to PGlite: TCP may split them.
 * `COPY … FROM STDIN` does not work: PGlite's backend aborts on it (it takes COPY data its own way).
 *
 * (`@electric-sql/pglite-socket` does the same, but its versions for PGlite 0.3 require
 * `@electric-sql/pglite` 0.3 as a peer, which would clash with the 0.5 the embedded start uses.)
 */
export async function serveWire(db: WireBackend): Promise<WireServer> {
  await db.waitReady;
  // PGlite sets some settings for its session at start (search_path): a reset puts them back.
  const { rows: startup } = await db.query<{ name: string; setting: string }>(
    "select name, setting from pg_settings where source = 'session'");
  const reset = ['rollback', 'discard all', ...startup.map((s) => `select set_config(${literal(s.name)}, ${literal(s.setting)}, false)`)];
  let turn = Promise.resolve();
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const previous = turn;
    turn = previous.then(() => session(db, socket, closed, reset)).catch(() => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await turn;
    },
  };
}

/** One client's turn on the single backend, from its first byte until it has gone and its session is reset. */
async function session(db: WireBackend, socket: Socket, closed: Promise<void>, reset: string[]): Promise<void> {
  if (socket.destroyed) return;
  let buffer = Buffer.alloc(0);
  let started = false;
  let work = Promise.resolve();

  const exchange = async (messages: Buffer): Promise<void> => {
    const reply = await db.execProtocolRaw(new Uint8Array(messages));
    if (reply.length > 0 && socket.writable) socket.write(Buffer.from(reply));
  };

  const onData = (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    const complete: Buffer[] = [];
    for (;;) {
      if (!started) {
        if (buffer.length < 8) break;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) break;
        const code = buffer.readInt32BE(4);
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          socket.write('N'); // No encryption on a loopback test port; the client goes on in plain text.
          continue;
        }
        if (code === CANCEL_REQUEST) {
          socket.end();
          return;
        }
        started = true;
        complete.push(message);
        continue;
      }
      if (buffer.length < 5) break;
      const length = buffer.readInt32BE(1) + 1;
      if (buffer.length < length) break;
      const message = buffer.subarray(0, length);
      buffer = buffer.subarray(length);
      if (message[0] === TERMINATE) {
        socket.end();
        break;
      }
      complete.push(message);
    }
    if (complete.length === 0) return;
    const messages = Buffer.concat(complete);
    work = work.then(() => exchange(messages)).catch((err: unknown) => {
      // PGlite itself failed (its WebAssembly backend aborts on what it does not support): say so,
      // since every later connection fails with it.
      console.error('PGlite wire bridge: the backend failed', err);
      socket.destroy();
    });
  };

  socket.on('data', onData);
  socket.resume();
  await closed;
  await work;
  // What a new backend would start with: no transaction, the login role, PGlite's settings, nothing
  // prepared. A Sync first ends an extended query the client left in error, which would skip the rest.
  await db.execProtocolRaw(SYNC);
  for (const sql of reset) await db.execProtocolRaw(simpleQuery(sql));
}

const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]); // 'S'

const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

function simpleQuery(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const message = Buffer.alloc(5 + text.length);
  message[0] = 0x51; // 'Q'
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return new Uint8Array(message);
}
