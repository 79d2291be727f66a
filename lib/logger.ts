/**
 * A small leveled logger that writes one line per event: text for people at
 * a terminal, JSON lines for log collectors. Log once, at the edge.
 *
 * @module
 */

/** Severity, most severe first. */
export type LogLevel = "error" | "warn" | "notice" | "info" | "debug";

/** Structured detail attached to a log line. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Writes log lines at or above the configured level. */
export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  /** Shown at every verbosity, like warnings: start-up and shutdown. */
  notice(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** 0: warnings and errors; 1: also info; 2 or more: also debug. */
  verbosity: number;
  /** Receives each finished line, newline included. */
  write: (line: string) => void;
  /** JSON lines instead of text. */
  json: boolean;
  /** The clock, for timestamps. */
  now: () => Date;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 0, notice: 0, info: 1, debug: 2 };

/** Creates a {@link Logger}. */
export function createLogger(options: LoggerOptions): Logger {
  function log(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (RANK[level] > options.verbosity) return;
    const time = options.now().toISOString();
    if (options.json) {
      options.write(JSON.stringify({ time, level, msg: message, ...fields }) + "\n");
      return;
    }
    const detail = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${formatValue(value)}`)
      .join(" ");
    options.write(
      `${time} ${level.toUpperCase()} ${message}${detail ? " " + detail : ""}\n`,
    );
  }
  return {
    error: (message, fields) => log("error", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    notice: (message, fields) => log("notice", message, fields),
    info: (message, fields) => log("info", message, fields),
    debug: (message, fields) => log("debug", message, fields),
  };
}

function formatValue(value: string | number | boolean | null | undefined): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}
