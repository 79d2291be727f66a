/**
 * A small registry of metrics in the Prometheus text exposition format,
 * version 0.0.4: counters, gauges and histograms with labels, rendered on
 * demand. Enough for Relay's own metrics, and nothing more (no summaries, no
 * timestamps, no exemplars).
 *
 * @module
 */

/** The `Content-Type` of {@link Registry.render}'s output. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** What a metric family is, as its `# TYPE` line says it. */
type MetricType = "counter" | "gauge" | "histogram";

/** One metric family: its samples as exposition lines (without `# HELP`/`# TYPE`). */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  samples(): string[];
}

/** Metric and label names the format accepts. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values with `\`, `"` and newlines escaped, as the format requires. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `{a="1",b="2"}`, or "" without labels. */
function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((name, i) => `${name}="${escapeLabelValue(values[i])}"`).join(",")}}`;
}

/** A number as the format writes it: `+Inf`, `-Inf`, `NaN`, or JavaScript's shortest form. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Series of one family keyed by their label values, in the order of `labelNames`. */
class Series<T> {
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, { values: string[]; data: T }>();
  readonly #create: () => T;

  constructor(labelNames: readonly string[], create: () => T) {
    for (const name of labelNames) {
      if (!LABEL_NAME.test(name) || name.startsWith("__") || name === "le") {
        throw new Error(`Invalid label name "${name}"`);
      }
    }
    this.#labelNames = labelNames;
    this.#create = create;
  }

  /** The data of the series with these labels, created on first use. */
  get(labels: Labels): T {
    const values = this.#labelNames.map((name) => {
      const value = labels[name];
      if (value === undefined) throw new Error(`Missing label "${name}"`);
      return value;
    });
    // Label values never hold NUL (pool names come from the command line).
    const key = values.join("\u0000");
    let entry = this.#series.get(key);
    if (!entry) {
      entry = { values, data: this.#create() };
      this.#series.set(key, entry);
    }
    return entry.data;
  }

  /** Every series, in label order, so that the output is stable. */
  entries(): { values: string[]; data: T }[] {
    return [...this.#series.values()].sort((a, b) => compareValues(a.values, b.values));
  }

  get labelNames(): readonly string[] {
    return this.#labelNames;
  }
}

function compareValues(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/** A counter: only ever goes up, from zero at process start. */
export class Counter implements Family {
  readonly type = "counter";
  readonly #series: Series<{ value: number }>;

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    this.#series = new Series(labelNames, () => ({ value: 0 }));
  }

  /** Adds `by` (default 1, never negative) to the series with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`A counter cannot go down: ${by}`);
    this.#series.get(labels).value += by;
  }

  /** Creates the series at zero, so that it is exposed before its first event. */
  touch(labels: Labels = {}): void {
    this.#series.get(labels);
  }

  /** The current value of the series with these labels (0 if it has none). */
  value(labels: Labels = {}): number {
    return this.#series.get(labels).value;
  }

  /** Every series with its labels and value. */
  series(): { labels: Labels; value: number }[] {
    const names = this.#series.labelNames;
    return this.#series.entries().map(({ values, data }) => ({
      labels: Object.fromEntries(names.map((name, i) => [name, values[i]])),
      value: data.value,
    }));
  }

  samples(): string[] {
    return this.#series.entries().map(({ values, data }) =>
      `${this.name}${labelText(this.#series.labelNames, values)} ${formatValue(data.value)}`
    );
  }
}

/** A gauge whose series are all replaced at once, at each scrape ({@link Gauge.set}). */
export class Gauge implements Family {
  readonly type = "gauge";
  readonly #labelNames: readonly string[];
  #rows: { labels: Labels; value: number }[] = [];

  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    this.#labelNames = labelNames;
  }

  /** Replaces every series by these. */
  set(rows: { labels: Labels; value: number }[]): void {
    const series = new Series(this.#labelNames, () => ({ value: 0 }));
    for (const row of rows) series.get(row.labels).value = row.value;
    this.#rows = series.entries().map(({ values, data }) => ({
      labels: Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i]])),
      value: data.value,
    }));
  }

  samples(): string[] {
    return this.#rows.map(({ labels, value }) =>
      `${this.name}${labelText(this.#labelNames, this.#labelNames.map((name) => labels[name]))} ${
        formatValue(value)
      }`
    );
  }
}

/** A histogram with fixed bucket bounds (upper bounds, `le`), per label set. */
export class Histogram implements Family {
  readonly type = "histogram";
  readonly #bounds: readonly number[];
  readonly #series: Series<{ counts: number[]; sum: number; count: number }>;

  constructor(
    readonly name: string,
    readonly help: string,
    options: { buckets: readonly number[]; labelNames?: readonly string[] },
  ) {
    const bounds = [...options.buckets].sort((a, b) => a - b);
    if (bounds.length === 0 || new Set(bounds).size !== bounds.length) {
      throw new Error(`Histogram "${name}" needs distinct buckets`);
    }
    this.#bounds = bounds;
    this.#series = new Series(
      options.labelNames ?? [],
      () => ({ counts: bounds.map(() => 0), sum: 0, count: 0 }),
    );
  }

  /** Records one observation (seconds, for the `_seconds` histograms). */
  observe(labels: Labels, value: number): void {
    const series = this.#series.get(labels);
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]) series.counts[i]++;
    }
    series.sum += value;
    series.count++;
  }

  samples(): string[] {
    const names = this.#series.labelNames;
    const lines: string[] = [];
    for (const { values, data } of this.#series.entries()) {
      const bucket = (le: string, count: number) =>
        `${this.name}_bucket${labelText([...names, "le"], [...values, le])} ${count}`;
      this.#bounds.forEach((bound, i) => lines.push(bucket(formatValue(bound), data.counts[i])));
      lines.push(bucket("+Inf", data.count));
      const labels = labelText(names, values);
      lines.push(`${this.name}_sum${labels} ${formatValue(data.sum)}`);
      lines.push(`${this.name}_count${labels} ${data.count}`);
    }
    return lines;
  }
}

/** The metric families of one process, rendered in the order they were registered. */
export class Registry {
  readonly #families: Family[] = [];

  /** Adds a family; returns it. */
  register<T extends Family>(family: T): T {
    if (!METRIC_NAME.test(family.name)) throw new Error(`Invalid metric name "${family.name}"`);
    if (this.#families.some((known) => known.name === family.name)) {
      throw new Error(`Metric "${family.name}" is registered twice`);
    }
    this.#families.push(family);
    return family;
  }

  /** Every family in the text exposition format, each with its `# HELP` and `# TYPE` lines. */
  render(): string {
    let text = "";
    for (const family of this.#families) {
      const help = family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
      text += `# HELP ${family.name} ${help}\n# TYPE ${family.name} ${family.type}\n`;
      for (const line of family.samples()) text += line + "\n";
    }
    return text;
  }
}
