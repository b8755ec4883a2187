/**
 * Runs one IpCommandDriver operation the way the agent would, inside whatever network namespace
 * this process was started in (tests start it with `ip netns exec`). Each run is a fresh agent
 * start: cleanUp() first, then the operation.
 *
 *   node --import tsx test/support/vip-driver-run.ts add|remove IP IFACE [--no-refuse]
 */
import { IpCommandDriver } from '../../src/agent/vip-driver.js';

const [operation, ip, iface] = process.argv.slice(2);
const driver = new IpCommandDriver({
  refuseMoved: !process.argv.includes('--no-refuse'),
  warn: (message) => process.stderr.write(`${message}\n`),
});
if (!ip || !iface || (operation !== 'add' && operation !== 'remove')) {
  process.stderr.write('usage: vip-driver-run.ts add|remove IP IFACE [--no-refuse]\n');
  process.exit(2);
}
await driver.cleanUp();
if (operation === 'add') await driver.add(ip, 24, iface);
else await driver.remove(ip, 24, iface);
