/**
 * node:test runs `after` hooks in the order they were added, so a cluster started before its
 * manager would be torn down first, and the manager's last queries would go to namespaces that are
 * already gone. Managers register their stop here; a cluster's teardown runs them first.
 */
const stoppers = new Set<() => Promise<void>>();

export function stopBeforeTeardown(stop: () => Promise<void>): () => void {
  stoppers.add(stop);
  return () => {
    stoppers.delete(stop);
  };
}

export async function runEarlyStops(): Promise<void> {
  const pending = [...stoppers];
  stoppers.clear();
  await Promise.all(pending.map((stop) => stop().catch(() => undefined)));
}
