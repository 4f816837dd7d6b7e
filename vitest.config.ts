import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The files that hold a measured rate at the SMTP server to a lower bound: the multi-daemon
 * acceptance files (>= 0.95 x the limit while there is work; next to another heavy file on 2
 * cores they measured 133-181/s of 200) and the destination groups' (a group within 5 % of its
 * limit every second while another is deferred). So
 * `npm test` runs them after everything else, one after the other, with the machine to themselves
 * (vitest.solo.config.ts); this config leaves them out.
 */
export const SOLO = [
  'test/cli/cluster.test.ts',
  'test/cli/cluster-failover.test.ts',
  'test/cli/cluster-redis-outage.test.ts',
  'test/integration/destination-groups.test.ts',
];

/** What both runs share. */
export const shared = {
  // Builds the CLI the tests spawn from the current source into .test-dist/ (unless it already
  // is a build of exactly that source: the solo run reuses the main run's), then starts one
  // MongoDB-wire server (FerretDB, or MONGODB_URI) and one Redis for the whole run.
  globalSetup: ['test/helpers/cli-build.ts', 'test/helpers/global-setup.ts'],
  // Integration tests start the daemon, push thousands of users through FerretDB and wait on
  // SMTP retries; tens of seconds is normal for them.
  testTimeout: 120_000,
  hookTimeout: 120_000,
  teardownTimeout: 30_000,
  // Child processes rather than worker threads: tests spawn the CLI and send signals, and a
  // crashed native handle in one file must not take the runner down.
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    ...shared,
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SOLO],
    // Two files at a time on the 2-core machine: most integration time is waiting (for a minute
    // boundary, a takeover, SMTP pacing), so a second file uses what one leaves idle (full run
    // 12.3 -> 7.4 min). Files never share data (a database each); tests wait for conditions with
    // generous bounds rather than for fixed times, so a neighbour's load slows them, not breaks them.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
