// Structured JSON-line logging for the daemon (pino): to the state dir's daemon.log, and in the
// foreground to stdout as well, for supervisors such as systemd that collect it.

import { destination, multistream, pino, stdTimeFunctions, type Logger } from 'pino';

export type { Logger };

export function createLogger(logPath: string, foreground: boolean): Logger {
  const file = destination({ dest: logPath, mkdir: true, sync: true });
  const streams = foreground ? multistream([{ stream: file }, { stream: process.stdout }]) : file;
  return pino({ base: { pid: process.pid }, timestamp: stdTimeFunctions.isoTime }, streams);
}

/**
 * Writes an error nothing caught to the log before the process ends: a daemon's stderr leads to
 * the process that started it, which is gone by then.
 */
export function logUncaught(log: Logger): void {
  process.once('uncaughtException', (e) => {
    log.fatal({ err: e }, 'daemon.uncaught-error');
    process.exit(70);
  });
}
