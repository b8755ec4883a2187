/**
 * The protocol of the manager's per-cycle exchange with the agents (POST /api/v1/sync).
 *
 * Managers and agents are never upgraded at the same instant, so each side states its protocol
 * and accepts a peer one version apart in either direction (a rolling upgrade); anything further
 * is refused whole, never half-applied, with a message naming the side to upgrade.
 */

/** The protocol this build speaks. Raise it when the exchange changes meaning. */
export const PROTOCOL_VERSION = 2;

/** Builds from before the field existed send no `protocol`: they speak protocol 1. */
export const PROTOCOL_WITHOUT_FIELD = 1;

/** How many versions apart the two sides may be and still work together. */
export const PROTOCOL_TOLERANCE = 1;

/**
 * Test setting only: `SWITCHYARD_PROTOCOL=1` makes this process speak the previous protocol, as an
 * older build would (an agent then leaves the field out of its answers), so tests can run a mixed
 * cluster without an old build at hand. Anything but a positive integer is ignored.
 */
export function speakingProtocol(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.SWITCHYARD_PROTOCOL;
  if (text === undefined || !/^[1-9][0-9]{0,3}$/.test(text)) return PROTOCOL_VERSION;
  return Number(text);
}

/** The protocol a peer speaks from the field it sent (absent: a build from before the field). */
export function peerProtocol(field: number | undefined): number {
  return field ?? PROTOCOL_WITHOUT_FIELD;
}

export type ExchangeSide = 'manager' | 'agent';

/**
 * Undefined when `own` and `peer` can work together; otherwise why not and which side must be
 * upgraded (the one that is behind: the other side cannot go back).
 */
export function protocolMismatch(
  side: ExchangeSide,
  own: number,
  peer: number,
): string | undefined {
  if (Math.abs(own - peer) <= PROTOCOL_TOLERANCE) return undefined;
  const other: ExchangeSide = side === 'manager' ? 'agent' : 'manager';
  const behind = own < peer ? `this ${side}` : `the ${other}`;
  return (
    `the ${other} speaks exchange protocol ${peer}, this ${side} speaks ${own} ` +
    `(at most ${PROTOCOL_TOLERANCE} apart work together): upgrade ${behind}`
  );
}
