/**
 * V8's memory-reducing full GC, for HeapReclaim. Its own module, away from
 * src/entry/heap.ts: what the entry imports is loaded before the first
 * /health, and a module shared with the services would pull their chunk in.
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"

/** V8's committed heap memory; pooled free pages are not in it (a reclaim releases those too). */
export const committedHeap = (): number => v8.getHeapStatistics().total_physical_size

let lastResortGc: (() => void) | undefined

/**
 * Runs V8's memory-reducing full GC (its "last resort" collection: it
 * compacts, shrinks the heap's limit and releases the pages V8 keeps pooled),
 * through the gc extension, which `--expose-gc` reaches in new contexts even
 * when set after start-up. A regular full GC leaves the pooled pages taken.
 * The flag is turned off again once the function is in hand, so contexts and
 * workers made later (by a tool, say) do not get a global `gc`.
 */
export const reclaimNow = (): void => {
  if (lastResortGc === undefined) {
    let gc: unknown = globalThis.gc
    if (typeof gc !== "function") {
      v8.setFlagsFromString("--expose-gc")
      try {
        gc = vm.runInNewContext("gc")
      } finally {
        v8.setFlagsFromString("--no-expose-gc")
      }
    }
    if (typeof gc !== "function") return
    lastResortGc = () => void Reflect.apply(gc, undefined, [{ type: "major", execution: "sync", flavor: "last-resort" }])
  }
  lastResortGc()
}
