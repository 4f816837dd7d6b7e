/**
 * DKIM verification by dkimpy (test/helpers/dkim-verify.py; Debian python3-dkim + python3-nacl,
 * installed by .ci/run), an implementation independent of the libraries mailwheel signs with.
 * `records` maps `<selector>._domainkey.<domain>` to its TXT value; DNS is never asked.
 * Returns, per message, one verdict per DKIM-Signature field in header order.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

const PYTHON = process.env['MAILWHEEL_TEST_PYTHON'] ?? '/usr/bin/python3';
const SCRIPT = join(repoRoot, 'test', 'helpers', 'dkim-verify.py');

export function dkimpyVerify(records: Record<string, string>, messages: readonly string[]): boolean[][] {
  const out = execFileSync(PYTHON, [SCRIPT], { input: JSON.stringify({ records, messages }), maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out.toString()) as boolean[][];
}
