/**
 * Runs hostile clients (./attacks.ts) in a process of their own, as an attacker on another machine
 * would: the floods' thousands of sockets and timers must not share the event loop of a manager
 * the test runs in its own process. The plan comes as JSON in argv[2]; on SIGTERM the process
 * prints what each flood did (JSON, one line) and exits.
 */
import { idleFlood, slowBodyFlood } from './attacks.js';

export type AttackPlan = Array<
  | { kind: 'idle'; host: string; port: number; sources: string[]; perSource: number }
  | {
      kind: 'slow-body';
      host: string;
      port: number;
      sources: string[];
      perSource: number;
      path: string;
      tokenEnv: string;
    }
>;

const plan = JSON.parse(process.argv[2] ?? '[]') as AttackPlan;
const floods = plan.map((attack) =>
  attack.kind === 'idle'
    ? idleFlood(attack.host, attack.port, attack.sources, attack.perSource)
    : slowBodyFlood(
        attack.host,
        attack.port,
        attack.sources,
        attack.perSource,
        attack.path,
        process.env[attack.tokenEnv] ?? '',
      ),
);
process.stdout.write('started\n');
process.once('SIGTERM', () => {
  const results = floods.map((flood) => flood.stop());
  process.stdout.write(`${JSON.stringify(results)}\n`, () => process.exit(0));
});
