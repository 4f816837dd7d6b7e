/** One-line forms of the errors the CLI reports, instead of stack traces. */

/** `open /no/such/dir/x.svg: ENOENT (no such file or directory)` for a Node system error, else undefined. */
export function systemErrorLine(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  const what = e.path === undefined ? e.syscall : `${e.syscall} ${e.path}`;
  // The message is "ENOENT: no such file or directory, open '...'": keep only the description.
  const description = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message)?.[1];
  return `${what}: ${e.code}${description === undefined ? '' : ` (${description})`}`;
}
