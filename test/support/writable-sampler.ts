import { openConnection, type Connection, type Endpoint } from '../../src/mysql/connect.js';

export interface WritableSample {
  at: number;
  /** Hosts that answered with read_only=0 in this sample. */
  writable: string[];
}

/**
 * Samples @@read_only on every host as fast as it can (one persistent connection per host,
 * reconnecting on error) so a test can assert that no sample ever shows two writable hosts.
 */
export class WritableSampler {
  readonly samples: WritableSample[] = [];
  private running = false;
  private loop?: Promise<void>;
  private readonly connections = new Map<string, Connection>();

  constructor(
    private readonly hosts: Record<string, Endpoint>,
    private readonly intervalMs = 20,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async readOnly(name: string, endpoint: Endpoint): Promise<boolean | undefined> {
    try {
      let connection = this.connections.get(name);
      if (!connection) {
        connection = await openConnection({ ...endpoint, connectTimeoutMs: 300 });
        this.connections.set(name, connection);
      }
      const [rows] = await connection.query({
        sql: 'SELECT @@global.read_only AS ro',
        timeout: 500,
      });
      return Number((rows as Array<{ ro: number }>)[0]?.ro) === 1;
    } catch {
      this.connections.get(name)?.destroy();
      this.connections.delete(name);
      return undefined;
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      const at = Date.now();
      const results = await Promise.all(
        Object.entries(this.hosts).map(
          async ([name, endpoint]) => [name, await this.readOnly(name, endpoint)] as const,
        ),
      );
      this.samples.push({
        at,
        writable: results.filter(([, readOnly]) => readOnly === false).map(([name]) => name),
      });
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    for (const connection of this.connections.values()) connection.destroy();
    this.connections.clear();
  }

  /** Samples where more than one host was writable: must be empty. */
  splitBrainSamples(): WritableSample[] {
    return this.samples.filter((sample) => sample.writable.length > 1);
  }
}
