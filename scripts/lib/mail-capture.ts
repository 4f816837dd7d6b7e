/**
 * A local SMTP server that accepts every message and writes it to `<dir>/<n>-<recipient>.eml`:
 * the mail capture of `npm run demo` and `npm run dev-servers`. Loopback only, no TLS, any or no
 * AUTH accepted. Uses `smtp-server` (a devDependency, like these scripts' other tools).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface CapturedMessage {
  /** 1, 2, 3... in arrival order. */
  n: number;
  file: string;
  rcpt: string;
  raw: Buffer;
}

export interface MailCapture {
  server: SMTPServer;
  port: number;
  close(): Promise<void>;
}

export interface MailCaptureOptions {
  /** 0: any free port. */
  port: number;
  /** Folder for the .eml files; must exist. */
  dir: string;
  banner: string;
  /** Called once a message is stored. */
  onMessage?: (m: CapturedMessage) => void;
}

export async function startMailCapture(opts: MailCaptureOptions): Promise<MailCapture> {
  let n = 0;
  const onData = (stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void): void => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => {
      const raw = Buffer.concat(chunks);
      const rcpt = session.envelope.rcptTo[0]?.address ?? 'unknown';
      const number = ++n;
      // Recipients are seeded test addresses, but never trust mail data with a file name.
      const file = path.join(opts.dir, `${String(number).padStart(5, '0')}-${rcpt.replace(/[^A-Za-z0-9@._-]/g, '_').slice(0, 100)}.eml`);
      writeFile(file, raw).then(
        () => {
          opts.onMessage?.({ n: number, file, rcpt, raw });
          callback();
        },
        // A 4xx makes the sender retry instead of counting a message that was never stored.
        (err: unknown) => callback(Object.assign(new Error(`cannot store message: ${String(err)}`), { responseCode: 451 })),
      );
    });
  };
  const server = new SMTPServer({
    // The default reverse DNS lookup of each client would send queries off this machine.
    disableReverseLookup: true,
    authOptional: true,
    allowInsecureAuth: true,
    // No certificate here, and nodemailer upgrades opportunistically when STARTTLS is offered.
    disabledCommands: ['STARTTLS'],
    logger: false,
    banner: opts.banner,
    onData,
  });
  // Client resets and the like are emitted here; without a listener they would crash the caller.
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('SMTP capture has no TCP address');
  let closing: Promise<void> | undefined;
  return {
    server,
    port: address.port,
    close: () => {
      // close() waits for open connections; bound it so a stuck client cannot hold a stop.
      closing ??= Promise.race([new Promise<void>((resolve) => server.close(() => resolve())), new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]);
      return closing;
    },
  };
}

/** The value of header `name` (lower case) in a raw message, unfolded; undefined when absent. */
export function headerValue(raw: string, name: string): string | undefined {
  const end = raw.search(/\r?\n\r?\n/);
  const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n(?=[ \t])/g, '');
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}
