import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fleetNodeFlagsAdvice, UNIT_FLAGS_CLUSTERS } from '../../src/daemon/node-flags.js';
import { unitFileNodeFlags } from '../support/unit-files.js';

const root = new URL('../../', import.meta.url).pathname;
const shippedFlags = (file: string) => unitFileNodeFlags(`${root}${file}`);

test('the unit’s flags with a fleet: advice naming the drop-in; the drop-in’s flags: none', () => {
  const unit = shippedFlags('deploy/switchyard.service');
  const fleet = shippedFlags('deploy/switchyard-fleet.conf');
  const advice = fleetNodeFlagsAdvice(100, unit);
  assert.ok(advice);
  assert.match(
    advice,
    /^100 clusters in one process with node --max-semi-space-size=2 --optimize-for-size/,
  );
  assert.match(advice, /install deploy\/switchyard-fleet\.conf as a systemd drop-in/);
  assert.equal(fleetNodeFlagsAdvice(100, fleet), undefined);
  // node's own defaults (no flags) are not the unit's small young generation.
  assert.equal(fleetNodeFlagsAdvice(100, []), undefined);
});

test('up to the clusters the unit’s flags were measured with, no advice', () => {
  const unit = shippedFlags('deploy/switchyard.service');
  assert.equal(fleetNodeFlagsAdvice(1, unit), undefined);
  assert.equal(fleetNodeFlagsAdvice(UNIT_FLAGS_CLUSTERS, unit), undefined);
  assert.ok(fleetNodeFlagsAdvice(UNIT_FLAGS_CLUSTERS + 1, unit));
});

test('each flag alone counts, the last of a repeated flag wins, underscores as node takes them', () => {
  assert.match(
    fleetNodeFlagsAdvice(20, ['--optimize-for-size']) ?? '',
    /with node --optimize-for-size,/,
  );
  assert.match(
    fleetNodeFlagsAdvice(20, ['--max_semi_space_size=4']) ?? '',
    /with node --max-semi-space-size=4,/,
  );
  // NODE_OPTIONS' small young generation, overridden on the command line.
  assert.equal(
    fleetNodeFlagsAdvice(20, ['--max-semi-space-size=2', '--max-semi-space-size=16']),
    undefined,
  );
  assert.equal(
    fleetNodeFlagsAdvice(20, ['--optimize-for-size', '--no-optimize-for-size']),
    undefined,
  );
  assert.equal(
    fleetNodeFlagsAdvice(20, ['--max-semi-space-size=32', '--enable-source-maps']),
    undefined,
  );
});
