/**
 * `mailwheel cluster status [--json]`: the instances, the partitions each holds, lease and
 * heartbeat ages, and the rate windows' use, read as one more process (it joins nothing, takes no
 * lease and grants nothing). Without `cluster.redisUrl`: the one-instance view (the live
 * instances from MongoDB, the sends recorded in each window). Redis not answering: one line
 * naming it, exit 69.
 */
import type { Command } from 'commander';
import { readClusterReport, type ClusterReport, type WindowReport } from '../../app/cluster-view.js';
import { withStores } from '../../app/stores.js';
import { systemClock } from '../../ports/clock.js';
import { configFor } from '../context.js';
import { formatCount } from '../format.js';

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('inspect the instances sharing the database (and Redis)');
  cluster
    .command('status')
    .description('instances, partitions held, heartbeat and lease ages, and the rate windows in use')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { config } = configFor(cmd);
      const report = await withStores(config, (stores) => readClusterReport(config, stores, { clock: systemClock }));
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
    });
}

/** The text form: a few aligned lines an operator reads at a glance. */
export function renderReport(r: ClusterReport): string {
  const out: string[] = [];
  if (r.mode === 'solo') {
    out.push(`one instance (no cluster.redisUrl): it holds every user and keeps its own rate windows`);
    out.push(`live instances (MongoDB): ${r.instances.length}${r.instances.length > 1 ? '  (several without Redis: each sends at the full rate; see README "One instance or several")' : ''}`);
    for (const i of r.instances) out.push(`  ${i.id}  host ${i.host}  pid ${i.pid}  heartbeat ${age(i.heartbeatAgeMs)} ago  since ${i.startedAt}`);
  } else {
    out.push(`partitioned over redis ${r.redis}: ${formatCount(r.partitions)} partitions, ${formatCount(r.members.length)} member(s), ${formatCount(r.free)} free, lease ttl ${age(r.leaseTtlMs)}`);
    for (const m of r.members) {
      const where = m.host === null ? 'not in the instance directory' : `host ${m.host}  pid ${m.pid ?? '-'}`;
      const leases = m.oldestLeaseAgeMs === null ? 'no leases' : `leases ${age(m.newestLeaseAgeMs)}..${age(m.oldestLeaseAgeMs)} old`;
      out.push(`  ${m.id}  ${where}  partitions ${formatCount(m.partitions)}  heartbeat ${age(m.heartbeatAgeMs)} ago  ${leases}`);
    }
    const l = r.leases;
    out.push(`leases: ${formatCount(l.held)} held${l.oldestAgeMs === null ? '' : `, ages ${age(l.newestAgeMs)}..${age(l.oldestAgeMs)}, next expiry in ${age(l.soonestExpiryMs)}`}`);
  }
  const windows = Object.entries(r.rateWindows) as Array<[string, WindowReport]>;
  if (windows.length === 0) out.push('rate windows: none configured');
  else {
    const first = windows[0]?.[1];
    const what = first?.scope === 'shared' ? 'shared by every instance (redis)' : 'recorded sends in MongoDB (each instance keeps its own windows)';
    out.push(`rate windows, ${what}${first?.state === 'down' ? ': NOT ANSWERING' : ''}:`);
    for (const [name, w] of windows) out.push(`  ${name.padEnd(9)} ${w.used === null ? '?' : formatCount(w.used)} of ${formatCount(w.limit)} used`);
  }
  return `${out.join('\n')}\n`;
}

/** `850 ms`, `14 s`, `3 min`, `2 h`; `-` when unknown. */
function age(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
