/**
 * The sections of an earlier bench/REPORT.md that a new report keeps: a contributor who runs one
 * suite (`npm run bench smtp`) has only that suite's JSON in bench/results/ (the results are not
 * committed), and regenerating from it alone would wipe every other suite's figures and charts.
 * A suite without a result keeps its section, its summary row and its charts exactly as they were,
 * and the report says which sections were regenerated and which were kept.
 */

export interface KeptSection {
  suite: string;
  /** Its row of the summary table, status set to "kept". */
  row: string;
  /** From its `## suite` heading to the next one, as it was. */
  section: string;
  /** Chart files (bench/report/*.svg) the section shows. */
  charts: string[];
}

/** Status shown in the summary table for a kept section. */
export const KEPT_STATUS = 'kept (earlier run)';

/** The sections of `report` that carry figures (their summary row links to them). */
export function keptSections(report: string): Map<string, KeptSection> {
  const rows = new Map<string, string>();
  for (const line of report.split('\n')) {
    const m = /^\| \[([^\]]+)\]\(#[^)]*\) \| [^|]+ \|(.*)$/.exec(line);
    if (m?.[1] !== undefined) rows.set(m[1], `| [${m[1]}](#${anchorOf(m[1])}) | ${KEPT_STATUS} |${m[2] ?? ''}`);
  }
  const out = new Map<string, KeptSection>();
  for (const part of report.split(/^(?=## )/m).slice(1)) {
    const suite = /^## (\S+)/.exec(part)?.[1];
    if (suite === undefined) continue;
    // A section added by hand may lack its summary row: made from its "- Ran: <date>, took <time>" line.
    const ran = /^- Ran: (.+?), took (.+)$/m.exec(part);
    const row = rows.get(suite) ?? (ran === null ? undefined : `| [${suite}](#${anchorOf(suite)}) | ${KEPT_STATUS} | ${ran[1] ?? '–'} | ${ran[2] ?? '–'} |`);
    if (row === undefined) continue;
    const charts = [...part.matchAll(/\]\(report\/([^)\s]+\.svg)\)/g)].map((m) => m[1] ?? '').filter((f) => f !== '');
    out.set(suite, { suite, row, section: `${part.replace(/\n+$/, '')}\n`, charts });
  }
  return out;
}

/** The heading anchor GitHub makes of a suite name (lower case, other characters dropped). */
export function anchorOf(suite: string): string {
  return suite.toLowerCase().replace(/[^a-z0-9_-]/g, '');
}
