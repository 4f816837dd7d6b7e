/** The multi-daemon acceptance files, one after the other (see SOLO in vitest.config.ts). */
import { defineConfig } from 'vitest/config';
import { shared, SOLO } from './vitest.config.js';

export default defineConfig({
  test: {
    ...shared,
    include: SOLO,
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1,
  },
});
