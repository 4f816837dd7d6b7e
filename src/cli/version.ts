/**
 * The package's version for `--version`. Its own module, free of config loading (zod, pino), so
 * `mailwheel --version` loads next to nothing. package.json is two levels above this module, as
 * config/ is (config/load.ts): src/cli/ when run from source, dist/cli/ when built.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}
