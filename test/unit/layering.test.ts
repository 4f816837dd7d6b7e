/**
 * The layering rule of eslint.config.js bites: fixture texts linted at paths inside src/ (they
 * are never written to disk) must fail when core imports an adapter or config, or when the CLI
 * imports an adapter, and pass for an allowed import.
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });
const RULE = 'import-x/no-restricted-paths';

async function layeringErrors(path: string, text: string): Promise<string[]> {
  const [result] = await eslint.lintText(text, { filePath: `${root}/${path}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === RULE).map((m) => m.message);
}

describe('layering lint rule', () => {
  it('fails when src/core imports an adapter (a type import too)', async () => {
    const errors = await layeringErrors('src/core/layering-fixture.ts', "import type { MongoStore } from '../adapters/mongo/store.js';\nexport type S = MongoStore;\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/adapters\/mongo\/store\.js.*restricted zone/);
  });

  it('fails when src/ports imports config or app', async () => {
    const text = "import type { Config } from '../config/schema.js';\nimport type { Stores } from '../app/stores.js';\nexport type C = [Config, Stores];\n";
    expect(await layeringErrors('src/ports/layering-fixture.ts', text)).toHaveLength(2);
  });

  it('fails when src/cli imports an adapter', async () => {
    const errors = await layeringErrors('src/cli/commands/layering-fixture.ts', "import { MimeBuilder } from '../../adapters/smtp/mime.js';\nexport const m = MimeBuilder;\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/the CLI reaches stores through app\/stores\.ts/);
  });

  it('passes allowed imports: core to core and ports, cli to app, ports and core', async () => {
    expect(await layeringErrors('src/core/layering-fixture.ts', "import type { Clock } from '../ports/clock.js';\nimport { MINUTE_MS } from './time.js';\nexport const x: [Clock | undefined, number] = [undefined, MINUTE_MS];\n")).toEqual([]);
    expect(
      await layeringErrors('src/cli/commands/layering-fixture.ts', "import { openStores } from '../../app/stores.js';\nimport type { BroadcastStore } from '../../ports/broadcasts.js';\nimport { MINUTE_MS } from '../../core/time.js';\nexport const x: [typeof openStores, BroadcastStore | undefined, number] = [openStores, undefined, MINUTE_MS];\n"),
    ).toEqual([]);
  });
});
