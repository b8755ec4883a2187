import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/problems.js';
import { registerAgent } from './commands/agent.js';
import { registerBackup } from './commands/backup.js';
import { registerRestore } from './commands/restore.js';
import { registerClone } from './commands/clone.js';
import { registerRejoin } from './commands/rejoin.js';
import { registerChecksum } from './commands/checksum.js';
import { registerConfigCheck } from './commands/config-check.js';
import { registerControl } from './commands/control.js';
import { registerDemo } from './commands/demo.js';
import { registerRun } from './commands/run.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerShow } from './commands/show.js';
import { registerWhy } from './commands/why.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from './exit.js';
import { switchyardVersion } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('switchyard')
    .description('Failover manager for MySQL/MariaDB master-master clusters')
    .version(switchyardVersion())
    .showHelpAfterError()
    .exitOverride();
  registerConfigCheck(program);
  registerSandbox(program);
  registerDemo(program);
  registerRun(program);
  registerShow(program);
  registerWhy(program);
  registerControl(program);
  registerAgent(program);
  registerChecksum(program);
  registerClone(program);
  registerRejoin(program);
  registerBackup(program);
  registerRestore(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version come through here with code 0; real usage errors become exit 2.
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    if (error instanceof CliExit) {
      process.stderr.write(`switchyard: ${error.message}\n`);
      process.exitCode = error.code;
      return;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    process.stderr.write(`switchyard: ${(error as Error).message}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
