import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may send (docs/design.md, "Webhooks"): http(s) URLs whose host resolves to public
 * addresses only — never loopback, private, link-local, shared, multicast or reserved ranges — unless
 * `WEBHOOK_ALLOW_HOSTS` lists the host name, or a range holding the address. The API checks at create
 * (a name that does not resolve yet is let through); the webhooks role checks again after resolving at
 * each attempt and connects to the address it checked, so a name cannot be re-pointed inside between
 * the check and the connection.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** The DNS seam: the system resolver by default; tests and on-premise installs may pass their own. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

const NOT_PUBLIC_V4 = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
  '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'];
const NOT_PUBLIC_V6 = ['::/127', '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001::/23', '2001:db8::/32', '2002::/16',
  'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8'];

const notPublic = new BlockList();
for (const range of NOT_PUBLIC_V4) addRange(notPublic, range);
for (const range of NOT_PUBLIC_V6) addRange(notPublic, range);

function addRange(list: BlockList, range: string): boolean {
  const [address, bits] = range.split('/');
  const family = isIP(address ?? '');
  if (!address || family === 0) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) return false;
  list.addSubnet(address, prefix, type);
  return true;
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is judged as the IPv4 address it carries. */
function normalized(address: string): { address: string; type: 'ipv4' | 'ipv6' } {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted) return { address: dotted[1]!, type: 'ipv4' };
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const high = parseInt(hex[1]!, 16);
    const low = parseInt(hex[2]!, 16);
    return { address: [high >> 8, high & 255, low >> 8, low & 255].join('.'), type: 'ipv4' };
  }
  return { address, type: isIP(address) === 6 ? 'ipv6' : 'ipv4' };
}

export function isPublicAddress(address: string): boolean {
  const a = normalized(address);
  return isIP(a.address) !== 0 && !notPublic.check(a.address, a.type);
}

export interface AllowList {
  /** The URL's host is listed by name: any address it resolves to is accepted. */
  allowsHost(hostname: string): boolean;
  allowsAddress(address: string): boolean;
}

/** `WEBHOOK_ALLOW_HOSTS`: host names (`*.example.com` for any name under it), addresses and ranges. */
export function parseAllowList(spec: string): AllowList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const ranges = new BlockList();
  for (const raw of spec.split(',')) {
    const entry = raw.trim().toLowerCase().replace(/^\[([^\]]*)\]/, '$1'); // [::1], [fd00::]/8
    if (!entry) continue;
    if (addRange(ranges, entry)) continue;
    if (entry.startsWith('*.')) suffixes.push(entry.slice(1));
    else names.add(entry);
  }
  return {
    allowsHost: (hostname) => {
      const host = hostname.toLowerCase();
      return names.has(host) || suffixes.some((s) => host.endsWith(s));
    },
    allowsAddress: (address) => {
      const a = normalized(address);
      return isIP(a.address) !== 0 && ranges.check(a.address, a.type);
    },
  };
}

/** The URL's problem as a sentence, or null: http(s), a host, no credentials in it. */
export function webhookUrlProblem(raw: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL';
  if (!url.hostname) return 'has no host';
  if (url.username || url.password) return 'must not carry credentials';
  return null;
}

/** The host of a URL as DNS and `isIP` want it (IPv6 literals without brackets). */
export const urlHost = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

export type TargetCheck = { ok: true; address: ResolvedAddress } | { ok: false; reason: string; unresolved?: boolean };

/**
 * Resolves the URL's host and checks every address it has; the answer is the address to connect to.
 * A host listed by name passes whatever it resolves to; otherwise each address must be public or in a
 * listed range (all of them: a name with one inside address among public ones is refused).
 */
export async function checkTarget(url: URL, allow: AllowList, resolve: Resolver = systemResolver): Promise<TargetCheck> {
  const host = urlHost(url);
  let addresses: ResolvedAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      return { ok: false, reason: `${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`, unresolved: true };
    }
    if (addresses.length === 0) return { ok: false, reason: `${host} does not resolve`, unresolved: true };
  }
  if (!allow.allowsHost(host)) {
    const inside = addresses.find((a) => !isPublicAddress(a.address) && !allow.allowsAddress(a.address));
    if (inside) {
      return { ok: false, reason: `${host} resolves to ${inside.address}, a private, loopback or reserved address` };
    }
  }
  return { ok: true, address: addresses[0]! };
}
