/**
 * `mailwheel preview --user ID`: renders the user's scheduled email exactly as the daemon would
 * build it (MimeBuilder with the configured templates and the unsubscribe headers), without
 * sending or claiming anything. Prints the header block as sent, then each part decoded (the
 * text that was quoted-printable encoded), or with `--raw` the whole message as it goes to SMTP (DKIM-signed when `dkim` is configured).
 */
import type { Command } from 'commander';
import { buildMessage, signMessage } from '../../app/messages.js';
import { withStores } from '../../app/stores.js';
import { scheduledKey } from '../../core/delivery-key.js';
import { fireInstant, nextFires, parseHHMM } from '../../core/fire-time.js';
import { escapeHtml, renderPart, templateVars } from '../../core/templates.js';
import type { Delivery } from '../../core/types.js';
import { unsubscribeHeaders } from '../../core/unsubscribe-token.js';
import { checkUser } from '../../core/validate-user.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { badArgument, configFor } from '../context.js';

interface PreviewOpts {
  user: string;
  kind: string;
  slot?: string;
  raw?: boolean;
  json?: boolean;
}

export function registerPreview(program: Command): void {
  program
    .command('preview')
    .description("render a user's email without sending it: headers, then the text and html parts")
    .requiredOption('--user <id>', 'user id (the mapped id field)')
    .option('--kind <kind>', 'which email: scheduled', 'scheduled')
    .option('--slot <HH:MM>', "which of the user's slots (default: the next one to fire)")
    .option('--raw', 'print the whole MIME message as it is handed to SMTP')
    .option('--json', 'print one JSON object: the slot, envelope, headers, rendered parts (and the raw message)')
    .action(async (opts: PreviewOpts, cmd: Command) => {
      if (opts.kind !== 'scheduled') throw badArgument(`--kind: "${opts.kind}" is not supported here (supported: scheduled)`);
      const loaded = configFor(cmd);
      const { config } = loaded;
      const doc = await withStores(config, (stores) => stores.users.byId(opts.user));
      if (!doc) throw new MailwheelError(ErrorCodes.NOT_FOUND, `no user with ${config.users.fields.id} "${opts.user}"`);
      const check = checkUser(doc, config.users.fields);
      if (check.kind === 'invalid') throw new MailwheelError(ErrorCodes.USER_INVALID, `user ${check.id} is invalid: ${check.reason}`);
      if (check.kind === 'inactive') throw new MailwheelError(ErrorCodes.USER_INVALID, `user ${check.id} is inactive or unsubscribed: no scheduled email`);
      const u = check.user;
      const now = Date.now();

      let slot: { time: string; localDate: string; at: number };
      if (opts.slot !== undefined) {
        if (parseHHMM(opts.slot) === undefined || !u.times.includes(opts.slot)) throw badArgument(`--slot: "${opts.slot}" is not one of the user's times (${u.times.join(', ')})`);
        const next = nextFires(u.timezone, [opts.slot], u.days, now, 1)[0];
        if (next === undefined) throw badArgument(`--slot: ${opts.slot} never fires for this user (no allowed weekday)`);
        slot = { time: opts.slot, localDate: next.localDate, at: fireInstant(u.timezone, next.localDate, opts.slot) };
      } else {
        const next = nextFires(u.timezone, u.times, u.days, now, 1)[0];
        if (next === undefined) throw new MailwheelError(ErrorCodes.USER_INVALID, `user ${u.id} has no day on which a slot fires`);
        slot = { time: next.time, localDate: next.localDate, at: next.at };
      }

      const d: Delivery = {
        key: scheduledKey(u.id, slot.time, slot.localDate),
        kind: 'scheduled',
        userId: u.id,
        email: u.email,
        name: u.name,
        slot: slot.time,
        localDate: slot.localDate,
        timezone: u.timezone,
        dueAt: slot.at,
      };
      const templates = loaded.templates.scheduled;
      const unsigned = buildMessage(templates, { from: config.smtp.from, now: () => now }, d, unsubscribeHeaders({ userId: u.id, email: u.email }, config.unsubscribe, now));
      // Signed with the configured DKIM keys, as the transport signs it just before SMTP.
      const built = { ...unsigned, raw: await signMessage(loaded.dkim, unsigned.raw) };
      if (opts.raw && !opts.json) {
        process.stdout.write(built.raw);
        return;
      }
      const headerEnd = built.raw.indexOf('\r\n\r\n');
      const head = built.raw.slice(0, headerEnd).replace(/\r\n/g, '\n');
      const vars = templateVars(d);
      if (opts.json) {
        const text = renderPart(templates.text, vars, (s) => s);
        const html = templates.html === undefined ? null : renderPart(templates.html, vars, escapeHtml);
        // Headers as sent, unfolded, in order (a name may repeat).
        const headers = head.replace(/\n[ \t]+/g, ' ').split('\n').map((line) => {
          const colon = line.indexOf(':');
          return { name: line.slice(0, colon), value: line.slice(colon + 1).trim() };
        });
        const result = { kind: 'scheduled', user: u.id, slot: slot.time, localDate: slot.localDate, timezone: u.timezone, dueAt: new Date(slot.at).toISOString(), key: d.key, envelope: built.envelope, headers, text, html, ...(opts.raw ? { raw: built.raw } : {}) };
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const out = [
        `# scheduled email of user ${u.id} for slot ${slot.time} on ${slot.localDate} (${u.timezone}), due ${new Date(slot.at).toISOString()}`,
        `# envelope: MAIL FROM:<${built.envelope.from}> RCPT TO:<${built.envelope.to.join('>, <')}>`,
        head,
        '',
        '--- text/plain; charset=utf-8 ---',
        renderPart(templates.text, vars, (s) => s).replace(/\n+$/, ''),
      ];
      if (templates.html !== undefined) out.push('', '--- text/html; charset=utf-8 ---', renderPart(templates.html, vars, escapeHtml).replace(/\n+$/, ''));
      process.stdout.write(`${out.join('\n').replace(/\n*$/, '')}\n`);
    });
}
