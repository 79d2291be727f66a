/**
 * Reads the facts about this host that node-locking compares (the CLI
 * edge of `lib/host_identity.ts`): the machine id, the hostname and the
 * network interfaces. Tests give other values through `Io.host`.
 *
 * The machine id is read as keygen-sh/machineid reads it on Linux:
 * `/var/lib/dbus/machine-id`, else `/etc/machine-id`. Other systems keep it
 * where Relay cannot read it without running a program (`ioreg` on macOS,
 * the registry on Windows), which it has no permission to do.
 *
 * @module
 */

import {
  goPlatform,
  machineIdOf,
  privateIPv4,
  protectedId,
  RELAY_APP_ID,
} from "../lib/host_identity.ts";
import type { HostReader } from "../lib/node_lock.ts";

/** Where machineid looks for the machine id on Linux, in order. */
export const MACHINE_ID_FILES: readonly string[] = ["/var/lib/dbus/machine-id", "/etc/machine-id"];

/** This host, read through Deno. */
export const SYSTEM_HOST: HostReader = {
  async fingerprint() {
    if (Deno.build.os !== "linux") {
      throw new Error(`Relay reads the machine id on Linux only, not on ${Deno.build.os}`);
    }
    const candidates = await Promise.all(
      MACHINE_ID_FILES.map((path) => Deno.readTextFile(path).catch(() => undefined)),
    );
    const id = machineIdOf(candidates);
    if (id === null) throw new Error(`no machine id in ${MACHINE_ID_FILES.join(" or ")}`);
    return await protectedId(id, RELAY_APP_ID);
  },
  platform() {
    return goPlatform(Deno.build);
  },
  hostname() {
    return Promise.resolve(Deno.hostname());
  },
  privateIp() {
    const ip = privateIPv4(Deno.networkInterfaces());
    return ip === null ? Promise.reject(new Error("no private ip found")) : Promise.resolve(ip);
  },
};
