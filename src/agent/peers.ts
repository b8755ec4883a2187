import type { AgentConfig } from './config.js';

/**
 * The cluster's agents as this agent's own file names them (`peers`). A request can tell the agent
 * where to send its bearer token (lease voters), which port to probe (the writer) and where to pull
 * a copy from (source_url); with `peers` set, each must be one of these, so a token holder cannot
 * turn the agent into a client of an address of their choosing. Without `peers`, any address is
 * taken as before (and the agent warns at start).
 */
export type Peers = NonNullable<AgentConfig['peers']>;

/** scheme://host:port of a URL, default ports spelled out, so two spellings of one agent compare equal. */
export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
    return `${parsed.protocol}//${parsed.hostname.toLowerCase()}:${port}`;
  } catch {
    return undefined;
  }
}

/** Why `url` may not be used as `host`'s agent, or undefined when it may. */
export function voterProblem(
  peers: Peers | undefined,
  host: string,
  url: string,
): string | undefined {
  if (peers === undefined) return undefined;
  const peer = Object.hasOwn(peers, host) ? peers[host] : undefined;
  if (peer === undefined) return `voter "${host}" is not among this agent's peers`;
  if (originOf(peer.agent) !== originOf(url))
    return `voter "${host}" is at ${peer.agent} in this agent's peers, not ${url}`;
  return undefined;
}

/** Why `url` is not any peer's agent (a source to pull a copy from), or undefined when it is. */
export function sourceProblem(peers: Peers | undefined, url: string): string | undefined {
  if (peers === undefined) return undefined;
  const origin = originOf(url);
  if (Object.values(peers).some((peer) => originOf(peer.agent) === origin)) return undefined;
  return `${url} is not the agent of any of this agent's peers`;
}

/** The MySQL address of a peer: its `address`, or the host of its agent URL. */
export function peerAddress(peer: Peers[string]): string {
  return peer.address ?? new URL(peer.agent).hostname.replace(/^\[|\]$/g, '');
}

/** Why the writer to probe is not a peer at the address the file gives, or undefined. */
export function writerProblem(
  peers: Peers | undefined,
  host: string,
  address: string,
): string | undefined {
  if (peers === undefined) return undefined;
  const peer = Object.hasOwn(peers, host) ? peers[host] : undefined;
  if (peer === undefined) return `writer "${host}" is not among this agent's peers`;
  if (peerAddress(peer) !== address)
    return `writer "${host}" is at ${peerAddress(peer)} in this agent's peers, not ${address}`;
  return undefined;
}
