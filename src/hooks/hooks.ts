import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';

/**
 * Hooks: programs the manager runs before and after a failover and a switchover and on every
 * host state change (like Orchestrator's and MHA's), to tell routers Switchyard does not drive
 * itself (Consul, DNS, an application drain). An argv list, never a shell; the context in
 * SWITCHYARD_* variables and as JSON on stdin; a timeout that kills the hook's whole process
 * group; stdout and stderr captured, bounded, into the journal.
 */

export type HookEvent =
  'pre_failover' | 'post_failover' | 'pre_switchover' | 'post_switchover' | 'on_state_change';

export interface HooksConfig {
  pre_failover?: string[];
  post_failover?: string[];
  pre_switchover?: string[];
  post_switchover?: string[];
  on_state_change?: string[];
  /** Milliseconds. */
  timeout: number;
  /** Whether a pre_failover hook that fails (non-zero, killed, not started) stops the failover. */
  pre_failover_aborts: boolean;
}

export interface HookContext {
  cluster: string;
  event: HookEvent;
  role?: string;
  old_writer?: string | null;
  new_writer?: string | null;
  reason?: string;
  /** on_state_change: the host and its states. */
  host?: string;
  state?: string;
  previous_state?: string;
}

export interface HookResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Could not be started (ENOENT, EACCES ...). */
  error?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Bytes of each stream kept for the journal; the rest is counted and dropped. */
export const HOOK_OUTPUT_LIMIT = 4096;
/** After the process exits, how long its streams may still flush (a grandchild may hold them). */
const STREAM_GRACE_MS = 500;

/** Variables every hook gets besides the context: enough to find programs, nothing secret. */
const PASSED_THROUGH = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'];

export function hookEnvironment(context: HookContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  const set = (name: string, value: string | null | undefined) => {
    if (value !== undefined && value !== null) env[`SWITCHYARD_${name}`] = value;
  };
  set('CLUSTER', context.cluster);
  set('EVENT', context.event);
  set('ROLE', context.role);
  set('OLD_WRITER', context.old_writer);
  set('NEW_WRITER', context.new_writer);
  set('REASON', context.reason);
  set('HOST', context.host);
  set('STATE', context.state);
  set('PREVIOUS_STATE', context.previous_state);
  return env;
}

class BoundedText {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;
  add(chunk: Buffer): void {
    const room = HOOK_OUTPUT_LIMIT - this.kept;
    if (room > 0) {
      const part = chunk.subarray(0, room);
      this.chunks.push(part);
      this.kept += part.length;
    }
    this.dropped += Math.max(0, chunk.length - Math.max(room, 0));
  }
  text(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `${text}... (${this.dropped} more bytes)` : text;
  }
}

/**
 * Runs `argv` (program and arguments, no shell) with the context, in its own process group so
 * that a timeout kills whatever it started too. Never throws: a hook that cannot start is a
 * failed result.
 */
export function runHook(
  argv: string[],
  context: HookContext,
  timeoutMs: number,
): Promise<HookResult> {
  const started = Date.now();
  const stdout = new BoundedText();
  const stderr = new BoundedText();
  return new Promise<HookResult>((resolve) => {
    let settled = false;
    let timedOut = false;
    let exit: { code: number | null; signal: string | null } | undefined;
    let startError: string | undefined;
    const [program, ...args] = argv;
    const child = spawn(program as string, args, {
      shell: false,
      detached: true,
      env: hookEnvironment(context),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        ok: startError === undefined && !timedOut && exit?.code === 0,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        ...(startError !== undefined ? { error: startError } : {}),
        stdout: stdout.text(),
        stderr: stderr.text(),
        durationMs: Date.now() - started,
      });
    };
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
      // A process that ignores nothing still needs a moment to be reaped.
      grace = setTimeout(finish, STREAM_GRACE_MS);
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
    child.on('error', (error) => {
      startError = error.message;
      finish();
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Its streams close with it, unless something it started in the background holds them.
      clearTimeout(grace);
      grace = setTimeout(finish, STREAM_GRACE_MS);
    });
    child.on('close', () => finish());
    // A hook that does not read its stdin must not fail on EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${JSON.stringify(context)}\n`);
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** One line for a refusal or a journal detail: how it ended and a bit of stderr. */
export function describeHookResult(result: HookResult): string {
  const how = result.error
    ? `could not start: ${result.error}`
    : result.timedOut
      ? 'timed out and was killed'
      : result.signal
        ? `killed by ${result.signal}`
        : `exit ${result.exitCode}`;
  const stderr = result.stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
  return stderr ? `${how}; stderr: ${stderr}` : how;
}

/**
 * The configured hooks with their journal: every run is journalled before (`hook.run`, phase
 * before, with the context) and after (outcome, exit, output). Absent hooks do nothing.
 */
export class Hooks {
  constructor(
    private readonly options: {
      config: HooksConfig | undefined;
      journal: Journal;
      log: Logger;
      run?: typeof runHook;
    },
  ) {}

  configured(event: HookEvent): boolean {
    return (this.options.config?.[event]?.length ?? 0) > 0;
  }

  get preFailoverAborts(): boolean {
    return this.options.config?.pre_failover_aborts ?? false;
  }

  /** Runs the hook for `context.event` and waits for it; undefined when none is configured. */
  async run(context: HookContext): Promise<HookResult | undefined> {
    const config = this.options.config;
    const argv = config?.[context.event];
    if (!config || !argv || argv.length === 0) return undefined;
    const { journal, log } = this.options;
    const action = `hook-${randomUUID()}`;
    const host = context.new_writer ?? context.host ?? undefined;
    journal.append({
      phase: 'before',
      event: 'hook.run',
      action,
      host,
      role: context.role,
      reason: `${context.event}: ${argv.join(' ')}`,
      inputs: { hook: context.event, argv, context },
    });
    const result = await (this.options.run ?? runHook)(argv, context, config.timeout);
    journal.append({
      phase: 'after',
      event: 'hook.run',
      action,
      host,
      role: context.role,
      outcome: result.ok ? 'ok' : 'failed',
      detail: `${context.event}: ${describeHookResult(result)}`,
      inputs: {
        hook: context.event,
        exitCode: result.exitCode,
        signal: result.signal,
        timedOut: result.timedOut,
        durationMs: result.durationMs,
        stdout: result.stdout,
        stderr: result.stderr,
      },
    });
    (result.ok ? log.info.bind(log) : log.warn.bind(log))(
      {
        event: 'hook.run',
        hook: context.event,
        ok: result.ok,
        exitCode: result.exitCode,
        timedOut: result.timedOut,
        durationMs: result.durationMs,
      },
      `${context.event} hook ${result.ok ? 'succeeded' : `failed (${describeHookResult(result)})`}`,
    );
    return result;
  }

  /**
   * Runs without making the caller wait (post hooks, state changes: the engine's lock must not
   * wait on them). Journalled all the same; `settled()` lets tests and shutdown wait.
   */
  fire(context: HookContext): void {
    if (!this.configured(context.event)) return;
    const work = this.run(context)
      .catch((error: Error) =>
        this.options.log.error(
          { event: 'hook.failed_to_run', hook: context.event, err: error.message },
          'a hook could not be run',
        ),
      )
      .finally(() => this.pending.delete(work));
    this.pending.add(work);
  }

  private readonly pending = new Set<Promise<unknown>>();

  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
