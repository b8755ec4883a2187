/** MMM's host states; names are part of the outside contract (metrics, API, CLI). */
export const HOST_STATES = [
  'ONLINE',
  'ADMIN_OFFLINE',
  'HARD_OFFLINE',
  'AWAITING_RECOVERY',
  'REPLICATION_DELAY',
  'REPLICATION_FAIL',
] as const;
export type HostState = (typeof HOST_STATES)[number];

/** Only ONLINE hosts take roles; the delay/fail states may keep the writer role but lose the others. */
export function mayHoldRole(state: HostState, exclusiveWriterRole: boolean): boolean {
  if (state === 'ONLINE') return true;
  return exclusiveWriterRole && (state === 'REPLICATION_DELAY' || state === 'REPLICATION_FAIL');
}
