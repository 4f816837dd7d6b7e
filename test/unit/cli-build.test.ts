/**
 * The test build of the CLI (test/helpers/cli-build.ts) is reused only while it is a build of
 * exactly the current source: every kind of source change makes the next run build again, whatever
 * the files' mtimes say, and a failed build is never taken for a good one. A fake build (it copies
 * the sources' text into the output) stands in for tsc, so each case checks what the tests would run.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureBuild, sourceFingerprint } from '../helpers/cli-build.js';

let root: string;
let outDir: string;
let builds: number;

function write(rel: string, text: string): void {
  const file = join(root, rel);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
}

function sourcesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourcesOf(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Stands in for tsc: the output is every source file's path and text, so a stale build shows. */
async function fakeBuild(dir: string): Promise<void> {
  builds++;
  mkdirSync(dir, { recursive: true });
  const text = sourcesOf(join(root, 'src'))
    .sort()
    .map((f) => `${relative(root, f)}: ${readFileSync(f, 'utf8')}`)
    .join('\n');
  writeFileSync(join(dir, 'out.js'), text);
}

const ensure = (extra = 'typescript 5.9.3', build = fakeBuild) => ensureBuild({ root, outDir, build, extra });
const output = () => readFileSync(join(outDir, 'out.js'), 'utf8');

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'mailwheel-cli-build-'));
  outDir = join(root, '.test-dist');
  builds = 0;
  write('src/cli/main.ts', 'v1');
  write('src/core/x.ts', 'x');
  write('tsconfig.json', '{}');
  write('tsconfig.build.json', '{"include":["src"]}');
  write('package.json', '{"type":"module"}');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('ensureBuild', () => {
  it('builds when there is no build, then reuses it while nothing changed', async () => {
    expect(await ensure()).toBe('built');
    expect(output()).toContain('src/cli/main.ts: v1');
    expect(await ensure()).toBe('fresh');
    expect(builds).toBe(1);
  });

  it('rebuilds after a content change even when the file keeps an older mtime than the build', async () => {
    await ensure();
    write('src/cli/main.ts', 'v2');
    const old = new Date(Date.now() - 86_400_000);
    utimesSync(join(root, 'src/cli/main.ts'), old, old);
    expect(await ensure()).toBe('built');
    expect(output()).toContain('src/cli/main.ts: v2');
    expect(output()).not.toContain('v1');
  });

  it.each<[string, () => void]>([
    ['a file added', () => write('src/core/new.ts', 'n')],
    ['a file deleted', () => rmSync(join(root, 'src/core/x.ts'))],
    ['a file renamed (same text)', () => renameSync(join(root, 'src/core/x.ts'), join(root, 'src/core/y.ts'))],
    ['tsconfig.json changed', () => write('tsconfig.json', '{"compilerOptions":{"target":"ES2020"}}')],
    ['tsconfig.build.json changed', () => write('tsconfig.build.json', '{"include":["src","more"]}')],
    ['package.json changed', () => write('package.json', '{"type":"commonjs"}')],
  ])('rebuilds after %s', async (_what, change) => {
    await ensure();
    change();
    expect(await ensure()).toBe('built');
    expect(builds).toBe(2);
    await fakeBuild(join(root, 'expected'));
    expect(output()).toBe(readFileSync(join(root, 'expected', 'out.js'), 'utf8'));
  });

  it('rebuilds for another compiler version', async () => {
    await ensure('typescript 5.9.3');
    expect(await ensure('typescript 5.10.0')).toBe('built');
  });

  it('a failed build is not reused: it rejects, leaves no half-built folder, and the next run builds again', async () => {
    await ensure();
    write('src/cli/main.ts', 'v2');
    const failing = async (dir: string) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'out.js'), 'half');
      throw new Error('type error');
    };
    await expect(ensure(undefined, failing)).rejects.toThrow('type error');
    expect(readdirSync(root).filter((n) => n.startsWith('.test-dist.'))).toEqual([]);
    expect(await ensure()).toBe('built');
    expect(output()).toContain('src/cli/main.ts: v2');
  });

  it('does not trust a build folder without its stamp (an older layout, or one copied in by hand)', async () => {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'out.js'), 'stale');
    expect(await ensure()).toBe('built');
    expect(output()).toContain('src/cli/main.ts: v1');
  });
});

describe('sourceFingerprint', () => {
  it('depends on the tree, not on where it is', async () => {
    const a = sourceFingerprint(root);
    const copy = mkdtempSync(join(tmpdir(), 'mailwheel-cli-build-copy-'));
    try {
      for (const f of [...sourcesOf(join(root, 'src')), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'), join(root, 'package.json')]) {
        const target = join(copy, relative(root, f));
        mkdirSync(join(target, '..'), { recursive: true });
        writeFileSync(target, readFileSync(f));
      }
      expect(sourceFingerprint(copy)).toBe(a);
      writeFileSync(join(copy, 'src/core/x.ts'), 'x ');
      expect(sourceFingerprint(copy)).not.toBe(a);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
