/**
 * The CLI loads only the command module a command line names (src/cli/main.ts commandsFor): that
 * program must behave as the one with every command registered, and a line it cannot read for
 * sure must get every command (help, suggestions for a typo).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, COMMANDS, commandsFor } from '../../src/cli/main.js';

const ALL = COMMANDS.map(([name]) => name);

/** Every command's help, subcommands included, by path (`broadcast send`). */
function helps(cmd: Command, path: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of cmd.commands) {
    const p = [...path, sub.name()];
    out[p.join(' ')] = sub.helpInformation();
    Object.assign(out, helps(sub, p));
  }
  return out;
}

describe('commandsFor', () => {
  it.each<[string[], string[]]>([
    [['start'], ['start']],
    [['broadcast', 'send', '--subject', 'x'], ['broadcast']],
    [['config', 'check', '--json'], ['config']],
    [['-c', '/etc/mw.json', 'start'], ['start']],
    [['--config', 'start', 'plan'], ['plan']],
    [['--config=/etc/mw.json', 'schedule', 'show'], ['schedule']],
    [['-c/etc/mw.json', 'suppression', 'list'], ['suppression']],
    [['--version'], []],
    [['-V'], []],
  ])('%j needs %j', (args, names) => {
    expect(commandsFor(args)).toEqual(names);
  });

  it.each<[string[]]>([[[]], [['--help']], [['-h']], [['help', 'start']], [['frobnicate']], [['strat']], [['--bogus', 'start']], [['-V', 'start']], [['--version', '--help']], [['--config']], [['-c', 'x']]])('%j needs every command', (args) => {
    expect(commandsFor(args)).toEqual(ALL);
  });
});

describe('buildProgram', () => {
  it('registers the commands of the table, in its order, when given no command line', async () => {
    expect((await buildProgram()).commands.map((c) => c.name())).toEqual(ALL);
  });

  it.each(ALL)('%s alone: the same command, subcommands and help as with every command registered', async (name) => {
    const full = await buildProgram();
    const lazy = await buildProgram(['node', 'mailwheel', name]);
    expect(lazy.commands.map((c) => c.name())).toEqual([name]);
    const fullHelps = Object.fromEntries(Object.entries(helps(full)).filter(([path]) => path === name || path.startsWith(`${name} `)));
    expect(Object.keys(fullHelps).length).toBeGreaterThan(0);
    expect(helps(lazy)).toEqual(fullHelps);
  });

  it('--version: no command module, the version still printed', async () => {
    const program = await buildProgram(['node', 'mailwheel', '--version']);
    expect(program.commands).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(program.version()).toBe(pkg.version);
  });
});
