/**
 * The one number format of the CLI: progress bars, tables and messages all print counts through
 * here, so `12,345` looks the same in `seed-users`, `plan` and `broadcast` output. JSON output
 * (`--json`) carries plain numbers instead.
 */

/** `12,345` (en-US grouping, whatever the machine's locale); `-` for a value not known yet. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return Math.round(n).toLocaleString('en-US');
}

/** `14/s`, `13.3/s`, `0.58/s`, `1,688/s`. */
export function formatRate(perSecond: number): string {
  if (perSecond >= 100) return `${formatCount(perSecond)}/s`;
  const r = perSecond >= 10 ? Math.round(perSecond * 10) / 10 : Math.round(perSecond * 100) / 100;
  return `${r}/s`;
}
