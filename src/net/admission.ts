import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';

/**
 * Which TCP connections a server takes, so that no single client, and no crowd of sockets that
 * never authenticate, can take all of them (issue 23: 128 idle connections silenced an agent,
 * lease pings and the manager's exchange included). Replaces node's all-or-nothing
 * `server.maxConnections`.
 *
 * - at most `perClient` sockets from one address;
 * - at most `maxConnections` sockets from sources outside the reserve; sources in the reserve
 *   (the agent's peers, and addresses that recently presented a valid token) have `reserved`
 *   more of their own, which idle sockets from elsewhere cannot fill, at most
 *   `reservedPerClient` of them per address: any client that once held the token (and every
 *   socket from its address, NAT included) must not be able to fill the reserve by itself;
 * - the priority sources (the agent's peers and the manager whose exchange it accepted last: the
 *   lease and the fence travel between them) have `priorityReserved` more, which nobody else can
 *   take, not even a client holding the token. A trusted source whose `perClient` sockets are taken may still use the reserve (and a
 *   priority source its pool): a router polling the health endpoints from the manager's or a
 *   peer's host shares that address, and its checks must never leave the exchange or a lease
 *   ping without a socket;
 * - with TLS, at most `preAuth` sockets still in their handshake (with mutual TLS: not yet
 *   authenticated); the handshake itself has a deadline (the server's handshakeTimeout).
 *
 * A refused socket is destroyed at once: the client sees a reset, not a hang.
 */
export interface ConnectionLimits {
  maxConnections: number;
  perClient: number;
  preAuth: number;
  reserved: number;
  /** Sockets one trusted (not priority) address may hold of the reserve. */
  reservedPerClient: number;
  /** Sockets only priority sources may use, once the general budget is full. */
  priorityReserved: number;
  /**
   * A connection whose first request has not arrived (headers complete) this long after it was
   * accepted is closed: node's own header timeout does not apply to a socket that sends nothing.
   */
  firstRequestMs: number;
}

export interface AdmissionOptions {
  tls: boolean;
  /** Addresses that get the reserved budget (checked per connection). */
  trusted?: (address: string) => boolean;
  /** Addresses that get the priority budget (checked per connection); they are trusted too. */
  priority?: (address: string) => boolean;
  log?: Logger;
}

/** One spelling per address: IPv4-mapped IPv6 (::ffff:10.0.0.1) as plain IPv4. */
export function normalAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function admitConnections(
  server: Server,
  limits: ConnectionLimits,
  options: AdmissionOptions,
): void {
  const perAddress = new Map<string, number>();
  let general = 0;
  let reserve = 0;
  let priorityPool = 0;
  const reserveByAddress = new Map<string, number>();
  const handshaking = new Map<string, Socket>();
  /** address:port -> the timer that closes the connection if no request arrives. */
  const awaitingRequest = new Map<string, NodeJS.Timeout>();
  let refused = 0;
  let lastLogAt = 0;

  const refuse = (socket: Socket, address: string, reason: string) => {
    refused++;
    const now = Date.now();
    // At most one log line per 10 s: a flood must not become a log flood.
    if (options.log && now - lastLogAt >= 10_000) {
      options.log.warn(
        { event: 'connection.refused', remote: address, reason, refused },
        'connections refused by the per-client, total or pre-authentication budget',
      );
      lastLogAt = now;
      refused = 0;
    }
    socket.destroy();
  };

  server.on('connection', (socket: Socket) => {
    const address = normalAddress(socket.remoteAddress);
    const fromAddress = perAddress.get(address) ?? 0;
    const overAddressCap = fromAddress >= limits.perClient;
    const priority = options.priority?.(address) ?? false;
    const trusted = priority || (options.trusted?.(address) ?? false);
    const reserveFromAddress = reserveByAddress.get(address) ?? 0;
    let pool: 'general' | 'priority' | 'reserve';
    if (!overAddressCap && general < limits.maxConnections) pool = 'general';
    else if (priority && priorityPool < limits.priorityReserved) pool = 'priority';
    else if (trusted && reserve < limits.reserved && reserveFromAddress < limits.reservedPerClient)
      pool = 'reserve';
    else if (overAddressCap)
      return refuse(socket, address, `more than ${limits.perClient} from one address`);
    else return refuse(socket, address, 'connection budget full');
    const key = `${address}:${socket.remotePort}`;
    if (options.tls) {
      if (handshaking.size >= limits.preAuth)
        return refuse(socket, address, `more than ${limits.preAuth} in the TLS handshake`);
      handshaking.set(key, socket);
    }
    perAddress.set(address, fromAddress + 1);
    if (pool === 'general') general++;
    else if (pool === 'priority') priorityPool++;
    else {
      reserve++;
      reserveByAddress.set(address, reserveFromAddress + 1);
    }
    const idle = setTimeout(() => {
      awaitingRequest.delete(key);
      // A client that sent part of a request is told why (as node's own header timeout would);
      // one that sent nothing, or is inside TLS, is just closed.
      if (!options.tls && socket.bytesRead > 0 && socket.writable) {
        socket.end(
          'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
        );
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
    }, limits.firstRequestMs);
    idle.unref();
    awaitingRequest.set(key, idle);
    socket.once('close', () => {
      clearTimeout(idle);
      if (awaitingRequest.get(key) === idle) awaitingRequest.delete(key);
      if (handshaking.get(key) === socket) handshaking.delete(key);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
      if (pool === 'general') general--;
      else if (pool === 'priority') priorityPool--;
      else {
        reserve--;
        const leftInReserve = (reserveByAddress.get(address) ?? 1) - 1;
        if (leftInReserve <= 0) reserveByAddress.delete(address);
        else reserveByAddress.set(address, leftInReserve);
      }
    });
  });
  // The request's socket is the TLS socket with TLS: both are found by the peer's address:port.
  server.on('request', (request: IncomingMessage) => {
    const key = `${normalAddress(request.socket.remoteAddress)}:${request.socket.remotePort}`;
    const idle = awaitingRequest.get(key);
    if (idle === undefined) return;
    clearTimeout(idle);
    awaitingRequest.delete(key);
  });
  if (options.tls)
    server.on('secureConnection', (socket: Socket) => {
      handshaking.delete(`${normalAddress(socket.remoteAddress)}:${socket.remotePort}`);
    });
}

/**
 * Addresses that presented a valid token within `ttlMs`: they get the reserved connection
 * budget, so that the manager (whose address an agent's file does not name) keeps a way in.
 */
export class RecentlyAuthenticated {
  private readonly seen = new Map<string, number>();
  constructor(private readonly ttlMs = 600_000) {}
  note(address: string | undefined): void {
    const normal = normalAddress(address);
    if (!normal) return;
    this.seen.delete(normal);
    this.seen.set(normal, Date.now());
    // Bounded: the oldest entries go first (a Map keeps insertion order).
    while (this.seen.size > 1024) this.seen.delete(this.seen.keys().next().value as string);
  }
  has(address: string): boolean {
    const at = this.seen.get(address);
    return at !== undefined && Date.now() - at <= this.ttlMs;
  }
}
