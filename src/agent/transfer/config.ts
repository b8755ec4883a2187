import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { readSecret } from '../../config/secrets.js';
import type { LocalServer } from '../../snapshot/command.js';

/**
 * Agent-file keys for clone/restore through the agent (issue 14): how the server is stopped and
 * started, and which replication account a copy swapped in uses. The agent reaches its own server
 * through the `mysql` section (socket or address, user, password).
 */

/** A program and its arguments, run without a shell. */
const argv = z
  .array(z.string().min(1, 'an argument must not be empty'))
  .min(1, 'give the program and its arguments as a list, e.g. [systemctl, stop, mariadb]')
  .meta({ valueType: 'program and arguments (list)' });

export const serviceSchema = z.strictObject({
  stop: argv.meta({ description: 'Stops the server.', example: ['systemctl', 'stop', 'mariadb'] }),
  start: argv.meta({
    description: 'Starts the server.',
    example: ['systemctl', 'start', 'mariadb'],
  }),
});

export const replicationSchema = z.strictObject({
  user: z.string().min(1).meta({ description: 'The replication account.', example: 'repl' }),
  password_file: z.string().min(1).meta({
    valueType: 'file path',
    description: "File holding the replication account's password.",
    example: '/etc/switchyard/repl.pass',
  }),
});

/** The agent file's `mysql` section, as validated in src/agent/config.ts (password_file already absolute). */
export interface AgentMysql {
  socket?: string;
  address: string;
  port: number;
  user: string;
  password_file?: string;
  password_env?: string;
}

/** Files named in the agent file are relative to it, like auth.token_file. */
export function agentFilePath(source: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dirname(source), file);
}

export function localServerOf(mysql: AgentMysql, source: string): LocalServer {
  return {
    socket: mysql.socket,
    host: mysql.address,
    port: mysql.port,
    user: mysql.user,
    passwordFile:
      mysql.password_file === undefined ? undefined : agentFilePath(source, mysql.password_file),
    password:
      mysql.password_env === undefined
        ? undefined
        : readSecret({ env: mysql.password_env }, 'agent mysql password'),
  };
}
