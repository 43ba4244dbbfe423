/**
 * What a store's outage costs, per store: the fault suite's scenarios (private servers, real HTTP
 * load on many sessions, a ledger of acknowledged writes) with a longer outage, as a table.
 *
 *   node --import tsx bench/faults.ts [--outage-ms 5000] [name filter]
 *
 * Not a test: nothing is asserted, the figures are printed (the README's reliability section).
 */
import { type FaultResult, runFault, summary } from '../test/faults/harness.ts';
import {
  clusterScenario,
  type Prepared,
  redisScenario,
  sentinelScenario,
  sqlScenario,
} from '../test/faults/scenarios.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--outage-ms');
const outageMs = at >= 0 ? Number(args[at + 1]) : 5000;
const filter = args.filter((arg, i) => !arg.startsWith('--') && (at < 0 || i !== at + 1))[0];

const scenarios: Array<[string, () => Promise<Prepared>]> = [
  ['postgres', () => sqlScenario('postgres')],
  ['mariadb', () => sqlScenario('mariadb')],
  ['redis', () => redisScenario()],
  ['cluster node-redis', () => clusterScenario('node-redis')],
  ['cluster ioredis', () => clusterScenario('ioredis')],
  ['sentinel node-redis', () => sentinelScenario('node-redis', false)],
  ['sentinel node-redis durable', () => sentinelScenario('node-redis', true)],
  ['sentinel node-redis 6', () => sentinelScenario('node-redis 6', false)],
  ['sentinel node-redis 6 durable', () => sentinelScenario('node-redis 6', true)],
  ['sentinel ioredis', () => sentinelScenario('ioredis', false)],
  ['sentinel ioredis durable', () => sentinelScenario('ioredis', true)],
];

const results: FaultResult[] = [];
for (const [name, prepare] of scenarios) {
  if (filter && !name.includes(filter)) continue;
  const { plan, teardown } = await prepare();
  try {
    // Sentinel's outage is the failover itself (outageMs 0 in its plan).
    const result = await runFault({ ...plan, outageMs: plan.outageMs === 0 ? 0 : outageMs });
    console.error(summary(result));
    results.push(result);
  } finally {
    await teardown();
  }
}

const ms = (n: number | null) => (n === null ? 'never' : `${Math.round(n)} ms`);
console.log(`\nOutage of ${outageMs} ms (Sentinel: master killed, failover); store timeout 1000 ms.\n`);
console.log(
  '| store | requests | error window | p99 during outage | max during outage | first success after recovery | acknowledged writes lost |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.name} | ${r.requests} | ${ms(r.errorWindowMs)} | ${ms(r.outage.p99Ms)} | ${ms(r.outage.maxMs)} | ${ms(r.recoveryMs)} | ${r.lost} of ${r.acknowledged} |`,
  );
}
// A row whose fault was not the planned one alone (Sentinel failing over twice) measures that fault.
for (const r of results) {
  if (r.anomalies.length > 0) console.log(`\nNot the planned fault alone in "${r.name}": ${r.anomalies.join('; ')}`);
}
