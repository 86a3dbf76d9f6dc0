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
