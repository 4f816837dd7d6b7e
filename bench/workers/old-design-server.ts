/**
 * The receiving server of the `old-design` suite, in its own process: an `smtp-server` on
 * 127.0.0.1 that serves at most `maxClients` connections at once, the way a provider caps a
 * client. smtp-server (3.21, smtp-connection.js `init()`) answers a connection that makes the
 * number of open sessions exceed `maxClients` with
 * "421 <name> Too many connected clients, try again in a moment" and closes it, before the greeting.
 *
 * Why a child process: the old design opens up to 1,000 connections at once from the suite's
 * process; if the server shared that event loop, the server's answers would be paced by the
 * client's work and the two designs would not meet the same server.
 *
 * It accepts every message and discards the data, and counts: messages accepted and per
 * recipient, TCP connections, SMTP sessions that got a greeting, connections refused (closed
 * without ever getting a greeting: the 421 above), and the peak number of concurrent TCP
 * connections and of concurrent sessions.
 *
 * Protocol: argv[2] is JSON `{ maxClients, maxSeconds }`. On stdout it prints
 * `{"ready":true,"port":N}` once listening, then one JSON line (ServerReport) for every
 * "report" line read on stdin. "stop" on stdin, stdin closing (the parent is gone) or `maxSeconds`
 * passing closes the server and exits.
 */
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface ServerReport {
  maxClients: number;
  /** Messages accepted (answered 250 at the end of DATA). */
  accepted: number;
  /** Distinct envelope recipients of accepted messages. */
  uniqueRecipients: number;
  /** Recipients who got more than one message. */
  duplicateRecipients: number;
  /** TCP connections accepted by the listener. */
  tcpConnections: number;
  /** Connections that reached the SMTP greeting (a session). */
  sessions: number;
  /** Connections closed without a greeting: refused with 421 "Too many connected clients". */
  refused: number;
  peakConcurrentTcp: number;
  peakConcurrentSessions: number;
  /** TCP connections still open at the time of the report. */
  openTcp: number;
}

interface Args {
  maxClients: number;
  maxSeconds: number;
}

/** Counters of what the server saw; a session is "greeted" once onConnect has run for it. */
class Tally {
  accepted = 0;
  tcpConnections = 0;
  openTcp = 0;
  peakConcurrentTcp = 0;
  sessions = 0;
  refused = 0;
  peakConcurrentSessions = 0;
  readonly #greeted = new Set<string>();
  readonly #perRecipient = new Map<string, number>();

  tcpOpened(): void {
    this.tcpConnections++;
    this.openTcp++;
    this.peakConcurrentTcp = Math.max(this.peakConcurrentTcp, this.openTcp);
  }

  tcpClosed(): void {
    this.openTcp--;
  }

  greeted(session: SMTPServerSession): void {
    this.sessions++;
    this.#greeted.add(session.id);
    this.peakConcurrentSessions = Math.max(this.peakConcurrentSessions, this.#greeted.size);
  }

  /** smtp-server calls onClose for every connection, refused ones included. */
  closed(session: SMTPServerSession): void {
    if (!this.#greeted.delete(session.id)) this.refused++;
  }

  message(session: SMTPServerSession): void {
    this.accepted++;
    for (const r of session.envelope.rcptTo) this.#perRecipient.set(r.address, (this.#perRecipient.get(r.address) ?? 0) + 1);
  }

  report(maxClients: number): ServerReport {
    let duplicateRecipients = 0;
    for (const n of this.#perRecipient.values()) if (n > 1) duplicateRecipients++;
    return {
      maxClients,
      accepted: this.accepted,
      uniqueRecipients: this.#perRecipient.size,
      duplicateRecipients,
      tcpConnections: this.tcpConnections,
      sessions: this.sessions,
      refused: this.refused,
      peakConcurrentTcp: this.peakConcurrentTcp,
      peakConcurrentSessions: this.peakConcurrentSessions,
      openTcp: this.openTcp,
    };
  }
}

function createServer(args: Args, tally: Tally): SMTPServer {
  const server = new SMTPServer({
    // Never resolve client names: that would send DNS queries off this machine.
    disableReverseLookup: true,
    // A fixed name in the greeting and the 421 text instead of this machine's host name.
    name: 'old-design-server',
    maxClients: args.maxClients,
    authOptional: true,
    allowInsecureAuth: true,
    // No STARTTLS: both designs connect in plain text to 127.0.0.1 (and mailwheel checks
    // certificates, which smtp-server's built-in one would fail).
    disabledCommands: ['STARTTLS'],
    logger: false,
    onConnect: (session, callback) => {
      tally.greeted(session);
      callback();
    },
    onClose: (session) => tally.closed(session),
    onData: (stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) => {
      // Read and discard; the message counts once smtp-server has all of it.
      stream.on('data', () => undefined);
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        tally.message(session);
        callback();
      });
    },
  });
  // Our listener runs after smtp-server's own: it only counts the raw TCP connections.
  server.server.on('connection', (socket: Socket) => {
    tally.tcpOpened();
    socket.once('close', () => tally.tcpClosed());
  });
  // A client resetting its connection is reported here; it must not end the process.
  server.on('error', () => undefined);
  return server;
}

function listen(server: SMTPServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
    });
  });
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: old-design-server.ts <json {maxClients, maxSeconds}>');
  const args = JSON.parse(raw) as Args;
  const tally = new Tally();
  const server = createServer(args, tally);
  const port = await listen(server);
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    // close() waits for open connections; do not wait long for them.
    setTimeout(() => process.exit(code), 1_000).unref();
    server.close(() => process.exit(code));
  };
  // Bounded in time whatever the parent does.
  setTimeout(() => stop(2), args.maxSeconds * 1000).unref();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'report') process.stdout.write(`${JSON.stringify(tally.report(args.maxClients))}\n`);
    else if (cmd === 'stop') stop(0);
  });
  lines.on('close', () => stop(0));
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`old-design-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
