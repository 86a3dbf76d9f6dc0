/**
 * What `node dist/main.js` loads before its first /health: the entry and the
 * modules it imports statically, then the gateway chunk and the boot chunk
 * (scripts/build.ts). A module that the entry shares with the services would
 * make the bundler put it in their chunk and load half a megabyte of services
 * before the port answers (it happened: start-up went from 1.5x to 2.4x the
 * bare node:http server). The build under test is the one globalSetup made.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"

const dist = path.resolve(import.meta.dirname, "..", "..", process.env["BEAMCLAW_DIST_DIR"] ?? "dist")

/** Chunks reached from `file` through static imports (not `import()`), `file` included. */
const staticClosure = (file: string, seen = new Set<string>()): Set<string> => {
  if (seen.has(file)) return seen
  seen.add(file)
  const text = fs.readFileSync(file, "utf8")
  for (const match of text.matchAll(/^import\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gm)) {
    staticClosure(path.resolve(path.dirname(file), match[1] ?? ""), seen)
  }
  return seen
}

const chunkNames = (files: Iterable<string>) => [...files].map((file) => path.basename(file).replace(/-[\w-]{8}\.js$/, ""))

describe("the start-up path of dist/main.js", () => {
  it("loads only the entry before it knows the command, then only the gateway and boot chunks", () => {
    const entry = path.join(dist, "main.js")
    assert.deepStrictEqual(chunkNames(staticClosure(entry)), ["main.js"], "the entry imports no chunk statically")
    const gatewayImport = /import\("(\.\/chunks\/gateway-[\w-]+\.js)"\)/.exec(fs.readFileSync(entry, "utf8"))?.[1]
    assert.isDefined(gatewayImport, "the entry loads the gateway chunk with import()")
    const loaded = chunkNames(staticClosure(path.join(dist, gatewayImport ?? "")))
    for (const name of loaded) assert.include(["gateway", "boot", "rolldown-runtime"], name, `${name} is loaded before the first /health`)
  })
})
