/**
 * "May I act?" Only the leader changes the cluster; every manager exports metrics and accepts
 * webhooks. The first implementation is a single local process that always leads; an etcd lease
 * can implement the same interface later.
 */
export interface Leadership {
  mayAct(): boolean;
  describe(): string;
}

export class SingleProcessLeadership implements Leadership {
  mayAct(): boolean {
    return true;
  }
  describe(): string {
    return `single manager (pid ${process.pid})`;
  }
}
