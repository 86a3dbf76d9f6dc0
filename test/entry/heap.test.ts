import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { tuneHeap } from "../../src/entry/heap.ts"

const repoRoot = path.resolve(import.meta.dirname, "..", "..")
const nodeBin = path.join(repoRoot, "node_modules", ".bin", "node")

/**
 * Runs a child node that allocates short-lived objects in a burst and reports
 * the largest young-generation capacity V8 reached, from --trace-gc-nvp.
 * With `tune`, the child calls tuneHeap() first.
 */
const largestNewSpace = (tune: boolean, nodeArgs: ReadonlyArray<string> = []): number => {
  const script = `
    ${tune ? `const { tuneHeap } = await import(${JSON.stringify(path.join(repoRoot, "src", "entry", "heap.ts"))}); tuneHeap();` : ""}
    const live = []
    for (let round = 0; round < 200; round++) {
      let garbage = []
      for (let i = 0; i < 50000; i++) garbage.push({ i, text: "y" + i })
      live.push(garbage[round])
      garbage = null
    }
    console.log(live.length)
  `
  const result = spawnSync(nodeBin, [...nodeArgs, "--trace-gc-nvp", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000, maxBuffer: 256 * 2 ** 20 })
  assert.strictEqual(result.status, 0, result.stderr)
  const capacities = [...result.stdout.matchAll(/new_space_capacity=(\d+)/g)].map((m) => Number(m[1]))
  assert.isAbove(capacities.length, 0, "scavenges with the young generation's capacity")
  return Math.max(...capacities)
}

describe("reclaimNow", () => {
  it("gives back the heap a burst left behind, which a regular full GC keeps", () => {
    const script = `
      const { committedHeap, reclaimNow } = await import(${JSON.stringify(path.join(repoRoot, "src", "entry", "heap.ts"))})
      let keep = []
      for (let round = 0; round < 20; round++) {
        const batch = []
        for (let i = 0; i < 100000; i++) batch.push({ i, text: "x" + i, pair: [i, i] })
        keep.push(batch)
        if (keep.length > 6) keep.shift()
      }
      keep = keep.slice(-1)
      globalThis.gc()
      const afterRegular = committedHeap()
      reclaimNow()
      console.log(JSON.stringify({ afterRegular, afterReclaim: committedHeap(), kept: keep[0].length }))
    `
    const result = spawnSync(nodeBin, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 })
    assert.strictEqual(result.status, 0, result.stderr)
    const { afterRegular, afterReclaim, kept } = JSON.parse(result.stdout)
    assert.strictEqual(kept, 100000, "the live data survives")
    assert.isBelow(afterReclaim, afterRegular / 2, `committed heap after a regular full GC ${afterRegular}, after reclaimNow ${afterReclaim}`)
  })

  it("works without --expose-gc on the command line", () => {
    const script = `
      const { reclaimNow } = await import(${JSON.stringify(path.join(repoRoot, "src", "entry", "heap.ts"))})
      reclaimNow(); reclaimNow()
      console.log(typeof globalThis.gc)
    `
    const result = spawnSync(nodeBin, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.strictEqual(result.stdout.trim(), "undefined", "the program's own global gets no gc function")
  })
})

describe("tuneHeap", () => {
  it("leaves young-generation sizing given on the command line alone", () => {
    assert.isFalse(tuneHeap(["--max-semi-space-size=16"]))
    assert.isFalse(tuneHeap(["--semi_space_growth_factor=2"]))
    assert.isTrue(tuneHeap(["--semi-space-growth-factor-x=1"]))
  })

  it("keeps the young generation from growing under a burst, unless the command line sizes it", () => {
    const tuned = largestNewSpace(true)
    const untuned = largestNewSpace(false)
    assert.isBelow(tuned, untuned, `largest young generation tuned ${tuned} vs V8's own ${untuned}`)
  })
})
