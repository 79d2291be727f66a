/**
 * A small leveled logger that writes one line per event: text for people at
 * a terminal, JSON lines for log collectors. Log once, at the edge.
 *
 * Verbosity counts `-v` as Keygen Relay does, so a command line written for
 * it logs the same amount here: `-v` (the default) errors, `-vv` warnings,
 * `-vvv` info (a line per request), `-vvvv` debug. Two kinds of line are shown
 * at every verbosity, which Keygen Relay does not have: notices (start-up,
 * shutdown, recovery from a problem) and warnings logged with
 * `{ always: true }`, about conditions an operator has to act on before they
 * turn into refused claims (license files about to expire, no file
 * descriptors left). A default run would otherwise keep them to itself until
 * nodes start failing.
 *
 * @module
 */

/** Severity, most severe first. */
export type LogLevel = "error" | "warn" | "notice" | "info" | "debug";

/** Structured detail attached to a log line. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Options of {@link Logger.warn}. */
export interface WarnOptions {
  /**
   * Shown at every verbosity, like a notice: for a condition the operator must
   * act on, which Keygen Relay never logs (so no verbosity of its to match).
   */
  always?: boolean;
}

/** Writes log lines at or above the configured level. */
export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields, options?: WarnOptions): void;
  /** Shown at every verbosity: start-up, shutdown, recovery. */
  notice(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

/**
 * The verbosity (the count of `-v`) from which each level shows, as Keygen
 * Relay counts it; `0` (no `-v`) shows what `-v` shows.
 */
export const VERBOSITY = { error: 1, warn: 2, info: 3, debug: 4 } as const;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * How many `-v` (see {@link VERBOSITY}): 0 or 1 errors, 2 also warnings,
   * 3 also info, 4 or more also debug. Notices show at every verbosity.
   */
  verbosity: number;
  /** Receives each finished line, newline included. */
  write: (line: string) => void;
  /** JSON lines instead of text. */
  json: boolean;
  /** The clock, for timestamps. */
  now: () => Date;
}

/** The least verbosity that shows each level. */
const SHOWN_FROM: Record<LogLevel, number> = {
  error: 0,
  notice: 0,
  warn: VERBOSITY.warn,
  info: VERBOSITY.info,
  debug: VERBOSITY.debug,
};

/** Creates a {@link Logger}. */
export function createLogger(options: LoggerOptions): Logger {
  const enabled = (level: LogLevel) => SHOWN_FROM[level] <= options.verbosity;
  function write(level: LogLevel, message: string, fields: LogFields = {}): void {
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
  function log(level: LogLevel, message: string, fields?: LogFields): void {
    if (enabled(level)) write(level, message, fields);
  }
  return {
    error: (message, fields) => log("error", message, fields),
    warn(message, fields, warnOptions) {
      if (warnOptions?.always || enabled("warn")) write("warn", message, fields);
    },
    notice: (message, fields) => log("notice", message, fields),
    info: (message, fields) => log("info", message, fields),
    debug: (message, fields) => log("debug", message, fields),
  };
}

/**
 * The verbosity of a command line: the count of `-v` when given (a flag wins
 * over its env var), else debug when `debug` (the `DEBUG` env var) is on, else
 * errors only. Keygen Relay resolves `-v` and `DEBUG` the same way.
 */
export function verbosityOf(count: number, debug: boolean): number {
  if (count > 0) return count;
  return debug ? VERBOSITY.debug : VERBOSITY.error;
}

function formatValue(value: string | number | boolean | null | undefined): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}
