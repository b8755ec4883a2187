/**
 * Hostile clients for tests (issue 23): idle sockets and slow bodies, from a chosen source
 * address, bounded in count and time. Only ever aimed at 127.0.0.1 or the test's own namespaces.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { AttackPlan } from './attack-process.js';

/** A raw socket from `from` to host:port that reads (so a close is seen) and sends nothing. */
export function idleSocket(host: string, port: number, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress: from });
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
}

/**
 * Keeps `perSource` idle sockets open from each source address to host:port, opening a new one
 * whenever the server closes one, until stop(). Returns how many it opened in all.
 */
export function idleFlood(
  host: string,
  port: number,
  sources: string[],
  perSource: number,
): { stop(): number } {
  let stopped = false;
  let opened = 0;
  const sockets = new Set<Socket>();
  const keep = async (from: string) => {
    while (!stopped) {
      const socket = await idleSocket(host, port, from).catch(() => undefined);
      if (!socket) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      opened++;
      sockets.add(socket);
      await new Promise((resolve) => socket.once('close', resolve));
      sockets.delete(socket);
    }
  };
  for (const from of sources) for (let index = 0; index < perSource; index++) void keep(from);
  return {
    stop() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      return opened;
    },
  };
}

/**
 * A request that declares a 100 kB body and sends 4 bytes of it every 1.5 s; resolves with the
 * answer's status line, or "closed". stop() ends it.
 */
export function slowBody(
  host: string,
  port: number,
  from: string,
  path: string,
  token: string,
): { result: Promise<string>; stop(): void } {
  let finish: (line: string) => void = () => undefined;
  const result = new Promise<string>((resolve) => {
    const socket = connect({ host, port, localAddress: from });
    let text = '';
    const trickle = setInterval(() => socket.write('    '), 1500);
    const done = (line: string) => {
      clearInterval(trickle);
      socket.destroy();
      resolve(line);
    };
    finish = done;
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\r\n')) done(text.split('\r\n')[0] as string);
    });
    socket.on('close', () => done(text ? (text.split('\r\n')[0] as string) : 'closed'));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
    );
  });
  return { result, stop: () => finish('ended by the test') };
}

/**
 * Slow bodies kept up from each source: a new one whenever the server ends one, until stop().
 * Returns the status lines of those that ended.
 */
export function slowBodyFlood(
  host: string,
  port: number,
  sources: string[],
  perSource: number,
  path: string,
  token: string,
): { stop(): string[] } {
  let stopped = false;
  const outcomes: string[] = [];
  const running = new Set<{ stop(): void }>();
  const keep = async (from: string) => {
    while (!stopped) {
      const attack = slowBody(host, port, from, path, token);
      running.add(attack);
      const line = await attack.result;
      running.delete(attack);
      if (!stopped) outcomes.push(line);
      if (line === 'closed') await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  for (const from of sources) for (let index = 0; index < perSource; index++) void keep(from);
  return {
    stop() {
      stopped = true;
      for (const attack of running) attack.stop();
      return outcomes;
    },
  };
}

/**
 * Starts the plan's floods in a child process (./attack-process.ts) and resolves once they run.
 * Tokens travel in the environment, never on the command line. stop() ends them and resolves
 * with each flood's result.
 */
export async function startAttackProcess(
  plan: AttackPlan,
  env: Record<string, string> = {},
): Promise<{ stop(): Promise<unknown[]> }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./attack-process.ts', import.meta.url)),
      JSON.stringify(plan),
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('started\n')) {
        child.stdout.off('data', check);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`the attack process exited early (${code})`)));
  });
  let stopped: Promise<unknown[]> | undefined;
  return {
    stop() {
      stopped ??= new Promise((resolve) => {
        if (child.exitCode !== null) return resolve([]);
        child.once('exit', () => {
          const line = output.split('\n').filter(Boolean).pop() ?? '[]';
          try {
            resolve(JSON.parse(line) as unknown[]);
          } catch {
            resolve([]);
          }
        });
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
}
