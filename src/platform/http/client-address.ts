import { BlockList, isIP } from 'node:net';

/**
 * Which hops in front of Tenantry may be believed about where a request comes from
 * (TRUST_PROXY), as Express's `trust proxy` reads it with a hop count or a list:
 * - `none`: the socket's peer is the client; X-Forwarded-For is ignored;
 * - `hops`: that many proxies, nearest first, are trusted (`true` means 1);
 * - `addresses`: the proxies whose addresses are in the list are trusted.
 * The client is the nearest hop that is not trusted: X-Forwarded-For is read from the right,
 * where the trusted proxy appended the address it saw, never from the left, which the client writes.
 */
export type ProxyTrust =
  | { kind: 'none' }
  | { kind: 'hops'; hops: number }
  | { kind: 'addresses'; ranges: readonly string[]; list: BlockList };

/** Names proxy-addr (Express) gives to the usual private ranges. */
const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * TRUST_PROXY: `false` (or 0), `true` (one hop), a hop count, or a comma-separated list of
 * addresses, CIDR ranges and the names loopback, linklocal, uniquelocal. Throws with a
 * sentence naming what is wrong.
 */
export function parseProxyTrust(value: string): ProxyTrust {
  const text = value.trim().toLowerCase();
  if (['', 'false', 'no', 'off', '0'].includes(text)) return { kind: 'none' };
  if (['true', 'yes', 'on'].includes(text)) return { kind: 'hops', hops: 1 };
  if (/^\d+$/.test(text)) return { kind: 'hops', hops: Number(text) };
  const list = new BlockList();
  const ranges: string[] = [];
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    for (const range of NAMED_RANGES[entry] ?? [entry]) {
      const [address = '', prefix, ...rest] = range.split('/');
      const family = isIP(address);
      const bits = family === 4 ? 32 : 128;
      if (family === 0 || rest.length > 0 || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= bits))) {
        throw new Error(`"${entry}" is not an IP address, a CIDR range (10.0.0.0/8) or one of loopback, linklocal, uniquelocal; TRUST_PROXY takes false, true, a hop count or a comma-separated list of those`);
      }
      // A single address is the subnet of all its bits.
      list.addSubnet(address, prefix === undefined ? bits : Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
      ranges.push(range);
    }
  }
  return { kind: 'addresses', ranges, list };
}

/** IPv4-mapped IPv6 (what a dual-stack socket reports for an IPv4 peer) shortened to IPv4. */
function normalized(address: string): string {
  const trimmed = address.trim();
  return trimmed.toLowerCase().startsWith('::ffff:') && isIP(trimmed.slice(7)) === 4 ? trimmed.slice(7) : trimmed;
}

function trusted(trust: ProxyTrust, address: string, distance: number): boolean {
  if (trust.kind === 'none') return false;
  if (trust.kind === 'hops') return distance < trust.hops;
  const family = isIP(address);
  return family !== 0 && trust.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The client's address: the socket's peer, or, when that peer is a trusted proxy, the address
 * it appended to X-Forwarded-For, and so on leftwards while the hops stay trusted. With every
 * hop trusted, the furthest one.
 */
export function clientAddressOf(trust: ProxyTrust, remoteAddress: string | undefined, forwardedFor: string | null | undefined): string {
  const peer = normalized(remoteAddress ?? '') || 'unknown';
  if (trust.kind === 'none' || !forwardedFor) return peer;
  // Nearest first: the socket's peer, then X-Forwarded-For from right to left.
  const hops = [peer, ...forwardedFor.split(',').map(normalized).filter(Boolean).reverse()];
  for (let distance = 0; distance < hops.length - 1; distance++) {
    if (!trusted(trust, hops[distance]!, distance)) return hops[distance]!;
  }
  return hops[hops.length - 1]!;
}

