// The test clusters' "service start" for agents (snapshot.service.start): starts mariadbd detached
// in the caller's network namespace and returns at once; the agent waits until the server answers.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

const [server, defaultsFile, logFile] = process.argv.slice(2);
if (!server || !defaultsFile || !logFile) {
  process.stderr.write('usage: mariadbd-start.mjs SERVER DEFAULTS_FILE LOG_FILE\n');
  process.exit(2);
}
const log = openSync(logFile, 'a');
const child = spawn(server, [`--defaults-file=${defaultsFile}`], {
  detached: true,
  stdio: ['ignore', log, log],
});
closeSync(log);
child.unref();
