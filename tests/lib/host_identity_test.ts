import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  goPlatform,
  machineIdOf,
  privateIPv4,
  protectedId,
  RELAY_APP_ID,
} from "../../lib/host_identity.ts";

Deno.test("protectedId() is machineid's ProtectedID: hex HMAC-SHA256 of the app id keyed by the machine id", async () => {
  const machineId = "3d1219c7c4c5404aaa1f6d2a48adfda4";
  const expected = createHmac("sha256", machineId).update("keygen-relay").digest("hex");
  assert.equal(await protectedId(machineId), expected);
  assert.equal(RELAY_APP_ID, "keygen-relay");
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.notEqual(await protectedId(machineId, "other-app"), expected);
});

Deno.test("machineIdOf() takes the first machine-id file that is not empty, trimmed", () => {
  assert.equal(machineIdOf(["abc\n", "def\n"]), "abc");
  assert.equal(machineIdOf([undefined, " def \n"]), "def");
  assert.equal(machineIdOf(["", "def"]), "def", "an empty file is skipped");
  assert.equal(machineIdOf([undefined, undefined]), null);
  assert.equal(machineIdOf([]), null);
});

Deno.test("goPlatform() writes Deno.build as Go's GOOS/GOARCH", () => {
  assert.equal(goPlatform({ os: "linux", arch: "x86_64" }), "linux/amd64");
  assert.equal(goPlatform({ os: "linux", arch: "aarch64" }), "linux/arm64");
  assert.equal(goPlatform({ os: "darwin", arch: "aarch64" }), "darwin/arm64");
  assert.equal(goPlatform({ os: "windows", arch: "x86_64" }), "windows/amd64");
  assert.equal(goPlatform({ os: "linux", arch: "riscv64" }), "linux/riscv64");
  assert.equal(goPlatform({ os: "linux", arch: "x86_64" }, "-"), "linux-amd64");
});

Deno.test("privateIPv4() takes the first private IPv4 address off the loopback interface", () => {
  const lo = [
    { name: "lo", family: "IPv4", address: "127.0.0.1" },
    { name: "lo", family: "IPv4", address: "10.9.9.9" },
    { name: "lo", family: "IPv6", address: "::1" },
  ];
  assert.equal(privateIPv4(lo), null, "the loopback interface's addresses do not count");
  assert.equal(
    privateIPv4([
      ...lo,
      { name: "eth0", family: "IPv4", address: "192.0.2.2" },
      { name: "eth0", family: "IPv6", address: "fd00::1" },
      { name: "eth1", family: "IPv4", address: "172.31.255.1" },
      { name: "eth2", family: "IPv4", address: "10.0.0.1" },
    ]),
    "172.31.255.1",
  );
  for (
    const [address, isPrivate] of [
      ["10.0.0.1", true],
      ["172.16.0.1", true],
      ["172.15.255.255", false],
      ["172.32.0.1", false],
      ["192.168.1.1", true],
      ["192.169.1.1", false],
      ["8.8.8.8", false],
      ["169.254.1.1", false],
    ] as const
  ) {
    assert.equal(
      privateIPv4([{ name: "eth0", family: "IPv4", address }]),
      isPrivate ? address : null,
      address,
    );
  }
});
