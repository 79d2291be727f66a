/**
 * The shape of the product: no import cycle within or between `cli/`, `lib/`
 * and `server/`; `lib/` never imports `cli/` or `server/`; nothing below the
 * CLI reads the command line or the environment.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../", import.meta.url);

interface ModuleInfo {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** Local module -> the local modules it imports, from `deno info --json main.ts`. */
async function importGraph(): Promise<Map<string, string[]>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const { modules } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: ModuleInfo[];
  };
  const local = (specifier: string) => specifier.startsWith(ROOT.href);
  const graph = new Map<string, string[]>();
  for (const module of modules.filter((module) => local(module.specifier))) {
    const imports = (module.dependencies ?? []).flatMap((dependency) =>
      [dependency.code?.specifier, dependency.type?.specifier].filter((s): s is string =>
        s !== undefined && local(s)
      )
    );
    graph.set(module.specifier.slice(ROOT.href.length), [
      ...new Set(imports.map((s) => s.slice(ROOT.href.length))),
    ]);
  }
  return graph;
}

/** Each import cycle among `modules`, as the path that closes it. */
function cycles(graph: Map<string, string[]>, modules: (name: string) => boolean): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (module: string, path: string[]) => {
    state.set(module, "open");
    for (const next of (graph.get(module) ?? []).filter(modules)) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(module, "done");
  };
  for (const module of [...graph.keys()].filter(modules)) {
    if (!state.has(module)) visit(module, [module]);
  }
  return found;
}

Deno.test("cli/, lib/ and server/ import each other without a cycle", async () => {
  const graph = await importGraph();
  const product = (name: string) => /^(cli|lib|server)\//.test(name);
  assert.ok([...graph.keys()].filter(product).length >= 30, [...graph.keys()].join(", "));
  assert.deepEqual(graph.get("cli/add.ts")?.includes("cli/program.ts"), false);
  assert.deepEqual(cycles(graph, product), []);
  // The checker finds a cycle when there is one.
  const looped = new Map(graph).set("lib/time.ts", ["lib/licenses.ts"]);
  assert.notDeepEqual(cycles(looped, product), []);
});

Deno.test("lib/ never imports cli/ or server/, and lib/ and server/ read neither Deno.args nor Deno.env", async () => {
  const graph = await importGraph();
  const below = [...graph.keys()].filter((name) => /^(lib|server)\//.test(name));
  assert.ok(below.some((name) => name.startsWith("lib/storage/sqlite/")), below.join(", "));
  for (const name of below) {
    if (name.startsWith("lib/")) {
      const upward = graph.get(name)!.filter((target) => /^(cli|server)\//.test(target));
      assert.deepEqual(upward, [], `${name} imports ${upward.join(", ")}`);
    }
    const text = await Deno.readTextFile(new URL(name, ROOT));
    assert.ok(!/\bDeno\.(args|env)\b/.test(text), `${name} reads Deno.args or Deno.env`);
  }
});
