import { defineConfig } from 'vitest/config';

/** Files that run alone, after the rest (see `projects`). */
const SOLO = ['test/cli/cluster.test.ts', 'test/cli/cluster-failover.test.ts', 'test/cli/cluster-redis-outage.test.ts'];

export default defineConfig({
  test: {
    // Starts one MongoDB-wire server (FerretDB, or MONGODB_URI) for the whole run.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Integration tests start the daemon, push thousands of users through FerretDB and wait on
    // SMTP retries; tens of seconds is normal for them.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Child processes rather than worker threads: tests spawn the CLI and send signals, and a
    // crashed native handle in one file must not take the runner down.
    pool: 'forks',
    // Two files at a time on the 2-core machine: most integration time is waiting (for a minute
    // boundary, a takeover, SMTP pacing), so a second file uses what one leaves idle (full run
    // 12.3 -> 7.4 min). Files never share data (a database each); tests wait for conditions with
    // generous bounds rather than for fixed times, so a neighbour's load slows them, not breaks them.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: SOLO, sequence: { groupOrder: 0 } } },
      // The multi-daemon acceptance tests measure rates at the SMTP server (>= 0.95 x the limit
      // while there is work): next to another heavy file on 2 cores they measured 133-181/s of
      // 200 here. So they run last, one at a time, with the machine to themselves.
      { extends: true, test: { name: 'solo', include: SOLO, poolOptions: { forks: { singleFork: true } }, sequence: { groupOrder: 1 } } },
    ],
  },
});
