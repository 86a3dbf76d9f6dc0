import { execFile } from "node:child_process"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"

// In a fresh process: the test worker may have loaded undici already, and then importing it changes nothing.
// The dispatcher is put there as discord.js's undici 6 does when it loads before the first model call.
const firstImport = async (guarded: boolean) => {
  const module = pathToFileURL(path.resolve(import.meta.dirname, "../../src/provider/UndiciFetch.ts")).href
  const script = `
    const key = Symbol.for("undici.globalDispatcher.1")
    // As discord.js's undici 6 installs its agent when it loads first (Node's own fetch uses other attributes).
    Object.defineProperty(globalThis, key, { value: { dispatch() {} }, writable: true, enumerable: false, configurable: false })
    const before = globalThis[key]
    if (${guarded}) await (await import(${JSON.stringify(module)})).importUndici()
    else await import("undici")
    console.log(JSON.stringify({ defined: before !== undefined, unchanged: globalThis[key] === before }))
  `
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { cwd: path.resolve(import.meta.dirname, "../..") })
  return JSON.parse(stdout)
}

describe("importUndici", () => {
  it("leaves the dispatcher of Node's fetch (and of discord.js's undici) as it was", async () => {
    // What it guards against: a bare import replaces it.
    expect(await firstImport(false)).toEqual({ defined: true, unchanged: false })
    expect(await firstImport(true)).toEqual({ defined: true, unchanged: true })
  })
})
