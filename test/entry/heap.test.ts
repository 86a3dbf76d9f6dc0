import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { tuneHeap } from "../../src/entry/heap.ts"

const repoRoot = path.resolve(import.meta.dirname, "..", "..")
const nodeBin = path.join(repoRoot, "node_modules", ".bin", "node")

/**
 * Runs a child node that fills its heap with live data and garbage, then
 * reports the old generation's limit V8 set after the last full GC, from
 * --trace-gc-nvp. With `tune`, the child calls tuneHeap() first.
 */
const oldGenerationLimit = (tune: boolean, nodeArgs: ReadonlyArray<string> = []): number => {
  const script = `
    ${tune ? `const { tuneHeap } = await import(${JSON.stringify(path.join(repoRoot, "src", "entry", "heap.ts"))}); tuneHeap();` : ""}
    const live = []
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 20000; i++) live.push({ round, i, text: "x".repeat(20) + i })
      let garbage = []
      for (let i = 0; i < 200000; i++) garbage.push({ i, text: "y" + i })
      garbage = null
    }
    globalThis.gc()
    console.log(live.length)
  `
  const result = spawnSync(nodeBin, [...nodeArgs, "--expose-gc", "--trace-gc-nvp", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000, maxBuffer: 256 * 2 ** 20 })
  assert.strictEqual(result.status, 0, result.stderr)
  // The full GC that globalThis.gc() ran last, with the live data still held.
  const full = [...result.stdout.matchAll(/gc=mc .*?end_object_size=(\d+).*?old_gen_allocation_limit=(\d+)/g)]
    .map((m) => ({ live: Number(m[1]), limit: Number(m[2]) }))
    .filter((gc) => gc.live > 100 * 2 ** 20)
  const last = full.at(-1)
  assert.isDefined(last, "a full GC with the live data")
  return (last?.limit ?? 0) / (last?.live ?? 1)
}

describe("tuneHeap", () => {
  it("leaves a growing factor given on the command line alone", () => {
    assert.isFalse(tuneHeap(["--expose-gc", "--heap-growing-percent=80"]))
    assert.isFalse(tuneHeap(["--heap_growing_percent=0"]))
    assert.isTrue(tuneHeap(["--heap-growing-percentile=1"]))
  })

  it("sets a lower growing factor, and a factor on the command line wins over it", () => {
    // Both children call tuneHeap(); the second was started with V8's largest factor (4) on its command line.
    const tuned = oldGenerationLimit(true)
    const given = oldGenerationLimit(true, ["--heap-growing-percent=300"])
    assert.isBelow(tuned, given * 0.75, `limit/live tuned ${tuned.toFixed(2)} vs command line ${given.toFixed(2)}`)
  })
})
