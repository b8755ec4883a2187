import { readdir, readFile, readlink } from 'node:fs/promises';

/** Where the local server can be found: its pid file, unix socket or TCP port (this host's). */
export interface ServerLocation {
  pidFile?: string;
  socketPath?: string;
  port?: number;
}

export interface ServerProcess {
  pid: number;
  /** The process name (/proc/PID/comm). */
  name: string;
  /** How it was found: "pid file F", "listening on socket S", "listening on port P". */
  foundBy: string;
}

/** Names a MySQL-protocol server process may have; the fence never stops anything else. */
const SERVER_NAMES = /^(mariadbd|mysqld)/;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A process that has exited (or is a zombie waiting to be reaped) holds no data and no port. */
export async function processAlive(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "PID (comm) STATE ...": comm may contain spaces and parentheses, so read after the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

async function processName(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function fromPidFile(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Inodes of the listening unix socket at `path` (this network namespace's /proc/net/unix). */
export function listeningUnixInodes(procNetUnix: string, path: string): string[] {
  return procNetUnix
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[7] === path && fields[5] === '01')
    .map((fields) => fields[6] as string);
}

/** Inodes of TCP sockets listening on `port` (any address) in /proc/net/tcp or tcp6 text. */
export function listeningTcpInodes(procNetTcp: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return procNetTcp
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A')
    .map((fields) => fields[9] as string);
}

async function readOr(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** The process holding one of the socket inodes open, by its file descriptors. */
async function holderOf(inodes: Set<string>): Promise<number | undefined> {
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (targets.has(await readlink(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      } catch {
        // The descriptor closed while we looked.
      }
    }
  }
  return undefined;
}

/**
 * The server process this agent runs beside: from its pid file, else the process that listens on
 * its socket or TCP port in this host's network namespace. Only a process named mariadbd or
 * mysqld counts: a fence stops the database server or nothing.
 */
export async function findServerProcess(
  location: ServerLocation,
): Promise<ServerProcess | undefined> {
  // Cheapest first, and the first that names a live server wins: scanning every process's file
  // descriptors costs tens to hundreds of milliseconds on a busy host, and a fence is waiting.
  const candidates: Array<() => Promise<{ pid: number | undefined; foundBy: string }>> = [];
  const { pidFile, socketPath, port } = location;
  if (pidFile)
    candidates.push(async () => ({
      pid: await fromPidFile(pidFile),
      foundBy: `pid file ${pidFile}`,
    }));
  if (socketPath)
    candidates.push(async () => ({
      pid: await holderOf(new Set(listeningUnixInodes(await readOr('/proc/net/unix'), socketPath))),
      foundBy: `listening on socket ${socketPath}`,
    }));
  if (port !== undefined)
    candidates.push(async () => ({
      pid: await holderOf(
        new Set(
          listeningTcpInodes(
            (await readOr('/proc/net/tcp')) + (await readOr('/proc/net/tcp6')),
            port,
          ),
        ),
      ),
      foundBy: `listening on port ${port}`,
    }));
  for (const candidate of candidates) {
    const { pid, foundBy } = await candidate();
    if (pid === undefined || !(await processAlive(pid))) continue;
    const name = await processName(pid);
    if (name && SERVER_NAMES.test(name)) return { pid, name, foundBy };
  }
  return undefined;
}

/** SIGKILL, then proof: the process is gone within `timeoutMs` (a stopped process dies too). */
export async function killAndConfirm(
  server: ServerProcess,
  timeoutMs: number,
): Promise<{ gone: boolean; detail: string }> {
  try {
    process.kill(server.pid, 'SIGKILL');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH')
      return { gone: true, detail: `${server.name} ${server.pid} already gone` };
    return {
      gone: false,
      detail: `cannot kill ${server.name} ${server.pid}: ${code ?? (error as Error).message}${code === 'EPERM' ? ' (the agent needs CAP_KILL or to run as the server user)' : ''}`,
    };
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await processAlive(server.pid)))
      return {
        gone: true,
        detail: `${server.name} ${server.pid} (${server.foundBy}) killed and gone`,
      };
    await sleep(20);
  }
  return {
    gone: false,
    detail: `${server.name} ${server.pid} still present ${timeoutMs} ms after SIGKILL`,
  };
}
