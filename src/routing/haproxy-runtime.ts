import { connect, type Socket } from 'node:net';

/**
 * HAProxy's runtime API (the `stats socket ... level admin`), as a unix socket path or the TCP
 * form HOST:PORT. Non-interactive mode: one line of commands per connection (several joined by
 * ";"), HAProxy answers and closes the connection.
 */
export interface RuntimeApi {
  /** Sends one command line and resolves with everything HAProxy answered. */
  run(command: string): Promise<string>;
}

/** The state HAProxy's administrative side gives a server (what Switchyard sets). */
export type ServerAdminState = 'ready' | 'maint' | 'drain';

export interface ServerState {
  backend: string;
  server: string;
  admin: ServerAdminState;
  /** Whether HAProxy's own check says the server is up (srv_op_state 2 = running). */
  up: boolean;
  /** Whether HAProxy checks the server itself (`check` in its line, e.g. httpchk on /health/writer). */
  checked: boolean;
}

/** Names HAProxy accepts for a backend or server in a command: nothing that would split a command line. */
const SAFE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export class RuntimeApiClient implements RuntimeApi {
  constructor(
    private readonly address: string,
    private readonly timeoutMs: number,
  ) {}

  run(command: string): Promise<string> {
    if (/[\r\n]/.test(command)) return Promise.reject(new Error('a command is one line'));
    return new Promise<string>((resolve, reject) => {
      const socket: Socket = this.address.startsWith('/')
        ? connect(this.address)
        : connect(portOf(this.address), hostOf(this.address));
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error) reject(error);
        else resolve(Buffer.concat(chunks).toString('utf8'));
      };
      // One deadline for connect, command and answer: a hung HAProxy costs at most this.
      const timer = setTimeout(
        () => finish(new Error(`no answer from ${this.address} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      socket.on('connect', () => socket.write(`${command}\n`));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => finish());
      socket.on('close', () => finish());
      socket.on('error', (error: Error) => finish(new Error(`${this.address}: ${error.message}`)));
    });
  }
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

export function assertSafeName(kind: string, name: string): void {
  if (!SAFE_NAME.test(name)) throw new Error(`${kind} name "${name}" cannot be sent to HAProxy`);
}

// srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, resolver and hostname
// maintenance; forced and inherited drain. Not 0x04 (CMAINT, "disabled" in the file): it stays set
// after `set server ... state ready` on such a server, which then takes traffic (seen on 2.6).
const ADMIN_MAINT = 0x01 | 0x02 | 0x20 | 0x40;
const ADMIN_DRAIN = 0x08 | 0x10;
const OP_RUNNING = 2;
// srv_check_state bit CHK_ST_CONFIGURED: the server has `check` in the file (set in maint too).
const CHECK_CONFIGURED = 0x02;

/**
 * Parses `show servers state [BACKEND]` (format version 1): a version line, a "# ..." header
 * naming the columns, then one line per server. Columns are found by name in the header.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').map((line) => line.trim());
  const header = lines.find((line) => line.startsWith('# '));
  if (!header) {
    const said = lines.find(Boolean) ?? 'nothing';
    throw new Error(`not a "show servers state" answer: ${said.slice(0, 200)}`);
  }
  const columns = header.slice(2).split(/\s+/);
  const at = (name: string) => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`"show servers state" has no ${name} column`);
    return index;
  };
  const [backendAt, serverAt, opAt, adminAt] = [
    at('be_name'),
    at('srv_name'),
    at('srv_op_state'),
    at('srv_admin_state'),
  ];
  // Older formats may lack the column: such servers are treated as unchecked (pushed by admin state).
  const checkStateAt = columns.indexOf('srv_check_state');
  const states: ServerState[] = [];
  for (const line of lines) {
    if (!line || line.startsWith('#') || /^\d+$/.test(line)) continue;
    const fields = line.split(/\s+/);
    const admin = Number(fields[adminAt]);
    const op = Number(fields[opAt]);
    if (fields.length < columns.length - 1 || Number.isNaN(admin) || Number.isNaN(op))
      throw new Error(`unreadable "show servers state" line: ${line.slice(0, 200)}`);
    states.push({
      backend: fields[backendAt] as string,
      server: fields[serverAt] as string,
      admin: admin & ADMIN_MAINT ? 'maint' : admin & ADMIN_DRAIN ? 'drain' : 'ready',
      up: op === OP_RUNNING,
      checked: checkStateAt >= 0 && (Number(fields[checkStateAt]) & CHECK_CONFIGURED) !== 0,
    });
  }
  return states;
}

/** The servers of one backend as HAProxy reports them now. */
export async function readBackend(api: RuntimeApi, backend: string): Promise<ServerState[]> {
  assertSafeName('backend', backend);
  const answer = await api.run(`show servers state ${backend}`);
  // An unknown backend is answered with a message, not a table.
  if (!answer.includes('# be_id'))
    throw new Error(answerError(answer, `show servers state ${backend}`));
  return parseServersState(answer).filter((state) => state.backend === backend);
}

/**
 * Sets one server's administrative state. A server taken to maint also has its established
 * sessions shut down (HAProxy leaves them open otherwise: a client would keep writing to the old
 * writer through it). Both in one command line, one connection.
 */
export async function setServerState(
  api: RuntimeApi,
  backend: string,
  server: string,
  state: 'ready' | 'maint',
): Promise<void> {
  assertSafeName('backend', backend);
  assertSafeName('server', server);
  const target = `${backend}/${server}`;
  const command =
    state === 'maint'
      ? `set server ${target} state maint; shutdown sessions server ${target}`
      : `set server ${target} state ready`;
  const answer = await api.run(command);
  // Success is silent; every refusal is a sentence ("No such server.", "Unknown command...").
  if (answer.trim() !== '') throw new Error(answerError(answer, command));
}

/**
 * Routes one server that HAProxy checks itself (its agent's /health/writer or /health/reader) by
 * its health, not by its administrative state: forced maintenance pauses HAProxy's checks, so a
 * server the manager had set to `maint` would never be brought up by them when the manager can
 * no longer reach this HAProxy (the poll half of push and poll). Out of routing: health forced
 * down and sessions shut down, administratively `ready`, so that its own check brings it back
 * only when its agent answers 200 (holds the writer lease). Into routing: `ready`, and with
 * `forceUp` health forced up without waiting for the next check.
 */
export async function setCheckedServerRoute(
  api: RuntimeApi,
  current: ServerState,
  routed: boolean,
  forceUp: boolean,
): Promise<string> {
  assertSafeName('backend', current.backend);
  assertSafeName('server', current.server);
  const target = `${current.backend}/${current.server}`;
  const commands: string[] = [];
  if (!routed) {
    // Leaving maint makes a checked server up at once, before any check (seen on 2.6); through
    // drain (no new connections) with its health forced down first, it is never routable on the way.
    if (current.admin === 'maint') commands.push(`set server ${target} state drain`);
    commands.push(`set server ${target} health down`);
    if (current.admin !== 'ready') commands.push(`set server ${target} state ready`);
    commands.push(`shutdown sessions server ${target}`);
  } else {
    if (current.admin !== 'ready') commands.push(`set server ${target} state ready`);
    if (forceUp) commands.push(`set server ${target} health up`);
  }
  if (commands.length === 0) return '';
  const command = commands.join('; ');
  const answer = await api.run(command);
  if (answer.trim() !== '') throw new Error(answerError(answer, command));
  return command;
}

function answerError(answer: string, command: string): string {
  const said = answer.trim().split('\n').slice(0, 3).join(' ').slice(0, 300);
  return `HAProxy refused "${command}": ${said || 'an empty answer'}`;
}
