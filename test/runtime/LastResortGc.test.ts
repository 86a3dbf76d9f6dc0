import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"

const repoRoot = path.resolve(import.meta.dirname, "..", "..")
const nodeBin = path.join(repoRoot, "node_modules", ".bin", "node")

describe("reclaimNow", () => {
  it("gives back the heap a burst left behind, which a regular full GC keeps", () => {
    const script = `
      const { committedHeap, reclaimNow } = await import(${JSON.stringify(path.join(repoRoot, "src", "runtime", "LastResortGc.ts"))})
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
      const { reclaimNow } = await import(${JSON.stringify(path.join(repoRoot, "src", "runtime", "LastResortGc.ts"))})
      reclaimNow(); reclaimNow()
      const vm = await import("node:vm")
      console.log(typeof globalThis.gc, vm.runInNewContext("typeof gc"))
    `
    const result = spawnSync(nodeBin, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.strictEqual(result.stdout.trim(), "undefined undefined", "neither the program's global nor a context made later gets a gc function")
  })
})
