import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
    // One test file at a time: the CI machine has 2 cores and all files share one FerretDB
    // (SQLite serialises writes), so parallel files mostly add timing noise.
    fileParallelism: false,
  },
});
