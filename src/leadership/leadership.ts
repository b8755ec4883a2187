/**
 * "May I act?" Only the leader changes the cluster; every manager exports metrics and accepts
 * webhooks. SingleProcessLeadership is the embedded default (one manager); with `ha.etcd`,
 * EtcdLeadership (src/ha) implements the same interface with an etcd lease per cluster.
 */
export interface Leadership {
  mayAct(): boolean;
  describe(): string;
  /**
   * The fencing token of the term this manager leads, while it may act; undefined otherwise, and
   * always undefined for a single manager (its agent requests keep their own numbering).
   */
  term?(): number | undefined;
}

export class SingleProcessLeadership implements Leadership {
  mayAct(): boolean {
    return true;
  }
  describe(): string {
    return `single manager (pid ${process.pid})`;
  }
}
