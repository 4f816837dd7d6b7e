/**
 * The CLI that tests spawn is a build of the current source, made once per vitest run (globalSetup,
 * the default export here) into `.test-dist/` — not `dist/` (the shipped build, which may be older
 * than the source) and not tsx (about 0.7 s more per process start, and the tests start ~200).
 *
 * `.test-dist/` sits directly in the repository, like `dist/`, because the build finds what the
 * package ships relative to its own modules: config/load.js reads `<module>/../../config`
 * (default.json, schedules.json, templates), context.js `<that>/../package.json`. One level
 * deeper (e.g. under .cache/) they would miss.
 *
 * Stale code must be impossible: the build is reused only when a fingerprint of every file under
 * src/, both tsconfigs, package.json and the TypeScript version equals the one stamped in `.test-dist/` by the
 * build that made it. Content, not mtimes: a copy that keeps old mtimes, a deleted or renamed file
 * all change it. The stamp is written after a successful build only, and the new build replaces
 * the old one whole (built beside it, then renamed), so a failed or interrupted build is never
 * taken for a good one. `npm test` runs vitest twice (main run, then the solo files): the second
 * run finds the first one's build fresh and skips the ~11 s tsc.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);

/** Where the test build goes (see above for why this level). */
export const testDistDir = join(repoRoot, '.test-dist');
/** The built CLI entry the tests spawn. */
export const testCliEntry = join(testDistDir, 'cli', 'main.js');

const STAMP = '.source-fingerprint';

/**
 * What the build's output depends on, relative to `root`: the sources, the compiler settings, and
 * package.json (its "type" decides whether NodeNext emits ESM or CommonJS).
 */
export const BUILD_INPUTS = { dirs: ['src'], files: ['tsconfig.json', 'tsconfig.build.json', 'package.json'] };

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/**
 * A hash of the inputs' paths and contents (and `extra`, e.g. the compiler version): equal
 * fingerprints mean the build would produce the same output.
 */
export function sourceFingerprint(root: string, extra = ''): string {
  const hash = createHash('sha256').update(`extra\0${extra}\0`);
  const files = [...BUILD_INPUTS.dirs.flatMap((d) => filesUnder(join(root, d))), ...BUILD_INPUTS.files.map((f) => join(root, f))];
  // Sorted, '/'-separated relative paths: the same tree hashes the same wherever it is.
  const named = files.map((f) => ({ f, name: relative(root, f).split(sep).join('/') })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { f, name } of named) {
    hash.update(`file\0${name}\0`);
    hash.update(existsSync(f) ? readFileSync(f) : '\0missing\0');
    hash.update('\0');
  }
  return hash.digest('hex');
}

export interface EnsureBuildOptions {
  /** The repository (holds src/ and the tsconfigs). */
  root: string;
  /** The build's folder. */
  outDir: string;
  /** Builds into the given (new, empty or missing) folder; rejects on failure. */
  build: (outDir: string) => Promise<void>;
  /** Mixed into the fingerprint (the compiler version). */
  extra?: string;
  log?: (line: string) => void;
}

/** Builds into `outDir` unless it holds a build of exactly the current inputs. Returns whether it built. */
export async function ensureBuild(opts: EnsureBuildOptions): Promise<'built' | 'fresh'> {
  const fingerprint = sourceFingerprint(opts.root, opts.extra);
  const stampFile = join(opts.outDir, STAMP);
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === fingerprint) {
    opts.log?.(`test build: ${opts.outDir} is a build of the current source, reused`);
    return 'fresh';
  }
  const next = `${opts.outDir}.building-${process.pid}`;
  rmSync(next, { recursive: true, force: true });
  const t0 = performance.now();
  try {
    await opts.build(next);
    // The fingerprint of the inputs as they were before the build: had one changed meanwhile,
    // the next run sees a different fingerprint and builds again.
    writeFileSync(join(next, STAMP), fingerprint);
  } catch (err) {
    rmSync(next, { recursive: true, force: true });
    throw err;
  }
  rmSync(opts.outDir, { recursive: true, force: true });
  renameSync(next, opts.outDir);
  opts.log?.(`test build: built ${opts.outDir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 'built';
}

/** `tsc -p tsconfig.build.json --outDir <outDir>`, as `npm run build` but elsewhere; a type error fails it. */
async function tscBuild(outDir: string): Promise<void> {
  const tsc = require.resolve('typescript/bin/tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`test build failed (tsc -p tsconfig.build.json --outDir ${outDir}):\n${e.stdout ?? ''}${e.stderr ?? ''}`.trimEnd());
  }
}

/** vitest globalSetup: the CLI build the tests spawn (test/helpers/cli.ts, scripts/lib/mailwheel-cluster.ts). */
export default async function setup(): Promise<void> {
  const tsVersion = (require('typescript/package.json') as { version: string }).version;
  await ensureBuild({ root: repoRoot, outDir: testDistDir, build: tscBuild, extra: `typescript ${tsVersion}`, log: (line) => console.log(`[global-setup] ${line}`) });
}
