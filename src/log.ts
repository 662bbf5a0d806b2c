/**
 * The service's pino logger: JSON lines to stdout by default. Modules take a child logger with a
 * `module` field (`childLogger(root, 'scheduler')`) so every line names its module.
 */

import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger } from 'pino';

export type LogLevel = Level | 'silent';

export interface LoggerOptions {
  /** Lowest level written; default `info`. */
  level?: LogLevel;
  /** Destination of the JSON lines; default stdout. Tests pass a stream to capture them. */
  destination?: DestinationStream;
}

/** Creates the root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const pinoOptions = { level, base: { service: 'stylegan-serve' } };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

/** Creates the logger of one module; its lines carry `module: <name>`. */
export function childLogger(parent: Logger, module: string): Logger {
  return parent.child({ module });
}

/** Creates a logger that writes nothing, for library callers and tests that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
