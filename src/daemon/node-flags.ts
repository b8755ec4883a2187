/**
 * The most clusters the shipped unit's node flags were measured to serve within the goals (the
 * README's exporter row: 10 clusters of real hosts, `/metrics` p99 50-67 ms, RSS under 100 MB).
 * A hundred took twice the CPU with them and kept `/metrics` within 250 ms in 3 phases of 10
 * (docs/fleet.md, "Node flags for a fleet").
 */
export const UNIT_FLAGS_CLUSTERS = 10;

/** The fleet drop-in's young generation (MB, per semi-space). */
const FLEET_SEMI_SPACE_MB = 16;

/**
 * Why a process running `clusters` clusters with these node flags should run with the fleet
 * drop-in's (deploy/switchyard-fleet.conf) instead, or undefined when it need not: the unit's
 * small young generation and `--optimize-for-size` suit a few clusters, not a fleet. `flags` are
 * node's own (process.execArgv and NODE_OPTIONS); the last of a repeated flag wins, as in node.
 */
export function fleetNodeFlagsAdvice(
  clusters: number,
  flags: readonly string[],
): string | undefined {
  if (clusters <= UNIT_FLAGS_CLUSTERS) return undefined;
  let semiSpaceMb: number | undefined;
  let optimizeForSize = false;
  for (const flag of flags) {
    const semiSpace = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(flag);
    if (semiSpace) semiSpaceMb = Number(semiSpace[1]);
    else if (/^--optimize[-_]for[-_]size$/.test(flag)) optimizeForSize = true;
    else if (/^--no[-_]optimize[-_]for[-_]size$/.test(flag)) optimizeForSize = false;
  }
  const small = semiSpaceMb !== undefined && semiSpaceMb < FLEET_SEMI_SPACE_MB;
  if (!small && !optimizeForSize) return undefined;
  const given = [
    ...(small ? [`--max-semi-space-size=${semiSpaceMb}`] : []),
    ...(optimizeForSize ? ['--optimize-for-size'] : []),
  ].join(' ');
  return `${clusters} clusters in one process with node ${given}, flags meant for a few clusters (measured up to ${UNIT_FLAGS_CLUSTERS}): with 100 clusters they took twice the CPU and /metrics answered late; install deploy/switchyard-fleet.conf as a systemd drop-in (node --max-semi-space-size=${FLEET_SEMI_SPACE_MB}, docs/fleet.md "Node flags for a fleet")`;
}

/** Node's flags of this process in the order they apply: NODE_OPTIONS', then its command line's, which win. */
export function processNodeFlags(): string[] {
  return [...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean), ...process.execArgv];
}
