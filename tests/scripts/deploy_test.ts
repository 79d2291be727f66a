/**
 * The highly available deployment as shipped: the Kubernetes manifests in
 * `deploy/kubernetes/`, the systemd unit of a PostgreSQL replica
 * (`scripts/relay-postgres.service`) and the README's "Scale-out on
 * PostgreSQL". Each is read as an operator would apply it and checked against
 * what relay really accepts: every flag and `RELAY_*` variable they name is in
 * the flag table of `cli/flags.ts`, the probes reach the port the Service
 * sends traffic to, and no secret is written into the Deployment.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { FLAGS, type FlagSpec } from "../../cli/flags.ts";
import { DEFAULT_PORT } from "../../lib/config.ts";
import { tempDir } from "../helpers.ts";

const ROOT = new URL("../../", import.meta.url);
const KUBERNETES = new URL("deploy/kubernetes/", ROOT);
const UNIT = new URL("scripts/relay-postgres.service", ROOT);
const SQLITE_UNIT = new URL("scripts/relay.service", ROOT);

/** Variables relay reads that are not in the flag table: libpq's password variable. */
const OTHER_ENV = ["PGPASSWORD"];

// deno-lint-ignore no-explicit-any
type Manifest = Record<string, any>;

type Section = Record<string, FlagSpec>;

/** Every document of every manifest in deploy/kubernetes/, by file name. */
async function manifests(): Promise<Map<string, Manifest[]>> {
  const files = new Map<string, Manifest[]>();
  for await (const entry of Deno.readDir(KUBERNETES)) {
    if (!entry.isFile || !/\.ya?ml$/.test(entry.name)) continue;
    const text = await Deno.readTextFile(new URL(entry.name, KUBERNETES));
    const documents = parseAllDocuments(text);
    for (const document of documents) {
      assert.deepEqual(document.errors, [], `${entry.name} parses as YAML`);
    }
    files.set(entry.name, documents.map((document) => document.toJS() as Manifest));
  }
  return files;
}

/** The one manifest of `kind`. */
function only(all: Map<string, Manifest[]>, kind: string): Manifest {
  const found = [...all.values()].flat().filter((manifest) => manifest.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
}

/** The text of every manifest, comments included. */
async function manifestTexts(): Promise<string> {
  const texts: string[] = [];
  for await (const entry of Deno.readDir(KUBERNETES)) {
    if (entry.isFile) texts.push(await Deno.readTextFile(new URL(entry.name, KUBERNETES)));
  }
  return texts.join("\n");
}

/** `--port` and `-p` of `-p, --port <port>`. */
function namesOf(spec: FlagSpec): string[] {
  return spec.flags.split(/[ ,]+/).filter((token) => token.startsWith("-"));
}

/** The flags `relay <command>` accepts: the global ones and the command's own. */
function flagsOf(command: string): Set<string> {
  const sections = FLAGS as unknown as Record<string, Section>;
  const specs = [...Object.values(FLAGS.global), ...Object.values(sections[command] ?? {})];
  return new Set([
    ...specs.flatMap(namesOf),
    "--help",
  ]);
}

/** Every env var of the flag table. */
function knownEnv(): Set<string> {
  const sections = Object.values(FLAGS) as unknown as Section[];
  return new Set([
    ...sections.flatMap((section) => Object.values(section).flatMap((spec) => spec.env)),
    ...OTHER_ENV,
  ]);
}

/** Every `RELAY_*` name in `text`. */
function relayVariables(text: string): string[] {
  return [...new Set(text.match(/\bRELAY_[A-Z0-9_]+\b/g) ?? [])];
}

/**
 * The relay commands of shell lines: `relay [global flags] <command> [flags]`,
 * as `{ command, flags }`, each flag without its `=value` and `-vv` as `-v`.
 */
function relayCommands(lines: string[]): { line: string; command: string; flags: string[] }[] {
  const commands = Object.keys(FLAGS).concat("migrate");
  const found = [];
  for (const line of lines) {
    const match = /(?:^|[\s/])relay((?:\s+-\S+)*)\s+([a-z]+)\b(.*)$/.exec(line);
    if (match === null || !commands.includes(match[2])) continue;
    // Up to a comment or the next command of the line.
    const rest = match[3].split(/\s(?:#|&&|\||;)/)[0];
    const tokens = `${match[1]} ${rest}`.split(/\s+/).filter((token) => token.startsWith("-"));
    const flags = tokens.map((token) => token.split("=")[0].replace(/^-(\w)\1+$/, "-$1"));
    found.push({ line, command: match[2], flags });
  }
  return found;
}

/** `key=value` lines of a systemd unit, a key given twice keeping every value. */
function unitSettings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const match = /^(\w+)=(.*)$/.exec(line);
    if (match === null) continue;
    settings.set(match[1], [...settings.get(match[1]) ?? [], match[2]]);
  }
  return settings;
}

/** The README's "Scale-out on PostgreSQL" section. */
async function readmeSection(): Promise<string> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const start = readme.indexOf("\n## Scale-out on PostgreSQL\n");
  assert.ok(start >= 0, "the README has a Scale-out on PostgreSQL section");
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end);
}

/** The lines of the ```sh blocks of `markdown`. */
function shellLines(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((match) => match[1].split("\n"));
}

Deno.test("deploy/kubernetes/ holds a Deployment, a Service, a Secret and a PodDisruptionBudget of the same pods", async () => {
  const all = await manifests();
  assert.deepEqual(
    [...all.values()].flat().map((manifest) => manifest.kind).sort(),
    ["Deployment", "PodDisruptionBudget", "Secret", "Service"],
  );
  const deployment = only(all, "Deployment");
  const labels = deployment.spec.template.metadata.labels;
  assert.deepEqual(deployment.spec.selector.matchLabels, labels);
  assert.deepEqual(only(all, "Service").spec.selector, labels);
  assert.deepEqual(only(all, "PodDisruptionBudget").spec.selector.matchLabels, labels);
  assert.equal(only(all, "PodDisruptionBudget").spec.maxUnavailable, 1);
  for (const manifest of [...all.values()].flat()) {
    assert.equal(manifest.metadata.name, "relay", `${manifest.kind} is named relay`);
  }
});

Deno.test("the Deployment's probes check GET /v1/health on the container port the Service targets", async () => {
  const all = await manifests();
  const deployment = only(all, "Deployment");
  const service = only(all, "Service");
  const [container] = deployment.spec.template.spec.containers;
  assert.equal(service.spec.type, "ClusterIP");
  assert.equal(service.spec.ports.length, 1);
  const [servicePort] = service.spec.ports;
  assert.equal(servicePort.port, DEFAULT_PORT);
  // targetPort names the container port, as the probes do.
  const target = container.ports.find((port: Manifest) => port.name === servicePort.targetPort);
  assert.ok(target, `the container has the port ${servicePort.targetPort}`);
  assert.equal(target.containerPort, DEFAULT_PORT);
  const env = new Map(container.env.map((entry: Manifest) => [entry.name, entry]));
  // relay listens where the container port says: RELAY_PORT, else the default.
  const listening = env.has("RELAY_PORT")
    ? Number((env.get("RELAY_PORT") as Manifest).value)
    : DEFAULT_PORT;
  assert.equal(listening, target.containerPort);
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    assert.equal(probe.httpGet.path, "/v1/health");
    assert.equal(probe.httpGet.port, servicePort.targetPort);
  }
  // A PostgreSQL failover (every replica 503) must not restart every replica at once.
  const liveness = container.livenessProbe;
  assert.ok(liveness.periodSeconds * liveness.failureThreshold >= 120, "liveness tolerates 2 min");
});

Deno.test("the Deployment runs three non-root replicas on a read-only root fs, with requests and a grace period", async () => {
  const deployment = only(await manifests(), "Deployment");
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  assert.equal(deployment.spec.replicas, 3);
  assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.ok(pod.securityContext.runAsUser > 0);
  assert.ok(pod.terminationGracePeriodSeconds >= 10);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
  assert.ok(container.resources.requests.cpu);
  assert.ok(container.resources.requests.memory);
  assert.match(container.image, /^registry\.example\.com\/relay:/);
  assert.deepEqual(container.args, ["serve"]);
  // The Dockerfile beside the manifests builds that image, running as that user.
  const dockerfile = await Deno.readTextFile(new URL("Dockerfile", KUBERNETES));
  assert.match(dockerfile, /^FROM gcr\.io\/distroless\/cc-debian12:nonroot$/m);
  assert.match(dockerfile, new RegExp(`^USER ${pod.securityContext.runAsUser}:`, "m"));
  assert.match(dockerfile, new RegExp(`^EXPOSE ${DEFAULT_PORT}$`, "m"));
  assert.match(dockerfile, /^ENTRYPOINT \["\/usr\/local\/bin\/relay"\]$/m);
});

Deno.test("the Deployment reads the database password and signing secret from the mounted Secret, never inline", async () => {
  const all = await manifests();
  const secret = only(all, "Secret");
  const deployment = only(all, "Deployment");
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const keys = Object.keys(secret.stringData);
  assert.deepEqual(keys.sort(), ["database-password", "signing-secret"]);
  for (const value of Object.values(secret.stringData) as string[]) {
    assert.match(value, /^CHANGE-ME/, "a placeholder, marked to replace");
  }
  const volume = pod.volumes.find((volume: Manifest) => volume.secret?.secretName === "relay");
  assert.ok(volume, "the Secret is a volume of the pod");
  const mount = container.volumeMounts.find((mount: Manifest) => mount.name === volume.name);
  assert.equal(mount.readOnly, true);
  const env = new Map<string, Manifest>(
    container.env.map((entry: Manifest) => [entry.name, entry]),
  );
  assert.equal(
    env.get("RELAY_DATABASE_PASSWORD_FILE")?.value,
    `${mount.mountPath}/database-password`,
  );
  assert.equal(env.get("RELAY_SIGNING_SECRET_FILE")?.value, `${mount.mountPath}/signing-secret`);
  // No secret value anywhere in the Deployment, and no password in the database URL.
  const text = JSON.stringify(deployment);
  for (const value of Object.values(secret.stringData) as string[]) {
    assert.ok(!text.includes(value), "a secret value in the Deployment");
  }
  const url = new URL(env.get("RELAY_DATABASE")!.value);
  assert.equal(url.protocol, "postgres:");
  assert.equal(url.password, "");
  assert.ok(!env.has("RELAY_SIGNING_SECRET") && !env.has("PGPASSWORD"));
  assert.ok(!JSON.stringify(container.args).includes("secret"));
});

Deno.test("every flag and RELAY_* variable of the manifests, the unit and the README's PostgreSQL section is in cli/flags.ts", async (t) => {
  const env = knownEnv();
  await t.step("the manifests", async () => {
    const container = only(await manifests(), "Deployment").spec.template.spec.containers[0];
    for (const { name } of container.env) assert.ok(env.has(name), `unknown variable ${name}`);
    for (const name of relayVariables(await manifestTexts())) {
      assert.ok(env.has(name), `unknown variable ${name}`);
    }
    const [command, ...args] = container.args;
    for (const flag of args) assert.ok(flagsOf(command).has(flag.split("=")[0]), flag);
  });
  await t.step("the systemd unit", async () => {
    const unit = await Deno.readTextFile(UNIT);
    for (const name of relayVariables(unit)) {
      assert.ok(env.has(name), `unknown variable ${name}`);
    }
    const commands = relayCommands(unitSettings(unit).get("ExecStart")!);
    assert.equal(commands.length, 1);
    for (const flag of commands[0].flags) {
      assert.ok(flagsOf(commands[0].command).has(flag), `unknown flag ${flag}`);
    }
  });
  await t.step("the README", async () => {
    const section = await readmeSection();
    for (const name of relayVariables(section)) {
      assert.ok(env.has(name), `unknown variable ${name}`);
    }
    const commands = relayCommands(shellLines(section));
    const shown = new Set(commands.map(({ command }) => command));
    assert.ok(shown.has("migrate") && shown.has("add"), "the section shows relay migrate and add");
    for (const { line, command, flags } of commands) {
      for (const flag of flags) {
        assert.ok(flagsOf(command).has(flag), `unknown flag ${flag} of relay ${command}: ${line}`);
      }
    }
    // Every flag the prose names in `code` belongs to some command.
    const every = new Set(Object.keys(FLAGS).concat("migrate").flatMap((c) => [...flagsOf(c)]));
    for (const [, flag] of section.matchAll(/`(--[a-z-]+)/g)) {
      assert.ok(every.has(flag), `unknown flag ${flag}`);
    }
    // The files it tells the reader to use are there.
    for (const [, path] of section.matchAll(/`((?:deploy|scripts)\/[\w./-]+)`/g)) {
      await Deno.stat(new URL(path, ROOT));
    }
  });
});

Deno.test("the PostgreSQL unit has the SQLite unit's hardening, no local state and the password as a credential", async () => {
  const unit = unitSettings(await Deno.readTextFile(UNIT));
  const sqlite = unitSettings(await Deno.readTextFile(SQLITE_UNIT));
  // What only a local SQLite file needs.
  const stateOnly = [
    "StateDirectory",
    "StateDirectoryMode",
    "WorkingDirectory",
    "ReadWritePaths",
    "Environment",
  ];
  for (const [key, value] of sqlite) {
    if (stateOnly.includes(key)) {
      assert.equal(unit.get(key), undefined, `${key} is for a local database`);
    } else if (key === "ExecStart" || key === "EnvironmentFile" || key === "Description") {
      continue;
    } else if (key === "RestartSec") {
      assert.ok(unit.has(key));
    } else {
      assert.deepEqual(unit.get(key), value, key);
    }
  }
  // Settings are required (the database URL is in them), not optional as with SQLite.
  assert.deepEqual(unit.get("EnvironmentFile"), ["/etc/relay/relay.env"]);
  assert.deepEqual(unit.get("After"), ["network-online.target"]);
  assert.deepEqual(unit.get("Wants"), ["network-online.target"]);
  assert.deepEqual(unit.get("Restart"), ["on-failure"]);
  assert.deepEqual(unit.get("StartLimitIntervalSec"), ["0"]);
  const [credential] = unit.get("LoadCredential")!;
  const [name, source] = credential.split(":");
  assert.equal(source, "/etc/relay/database-password");
  assert.deepEqual(unit.get("ExecStart"), [
    `/usr/local/bin/relay serve --database-password-file=\${CREDENTIALS_DIRECTORY}/${name}`,
  ]);
});

Deno.test("systemd-analyze verify accepts the PostgreSQL unit", async () => {
  let available = true;
  try {
    await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    available = false;
  }
  // Only where systemd is installed (CI's image has it); the settings are checked above anyway.
  if (!available) return;
  await using dir = await tempDir();
  // verify wants ExecStart's binary to exist: an executable stands in for relay.
  const binary = `${dir.path}/relay`;
  await Deno.writeTextFile(binary, "#!/bin/sh\n");
  await Deno.chmod(binary, 0o755);
  const unit = (await Deno.readTextFile(UNIT)).replaceAll("/usr/local/bin/relay", binary);
  await Deno.writeTextFile(`${dir.path}/relay.service`, unit);
  const result = await new Deno.Command("systemd-analyze", {
    args: ["verify", `${dir.path}/relay.service`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(stderr, "", "no warning");
  assert.equal(result.code, 0);
});
