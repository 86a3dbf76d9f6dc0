/**
 * Gives memory back once the gateway goes quiet after work.
 *
 * V8 sizes the heap for speed while turns run: after each full GC the old
 * generation may grow to a multiple of what survived, and the pages a burst
 * freed stay pooled for reuse. That keeps full GCs rare under load (they are
 * what made event latency spike every half second under a burst of a
 * thousand turns, bench/RESULTS.md), but the memory stays taken afterwards:
 * V8's own memory reducer does not run in Node after a burst. So once no turn
 * has run for `quietAfter` and V8's committed heap has grown since the last
 * reclaim (or the start) by `minGrowthBytes` and by `minGrowthRatio` of what
 * it was then, one memory-reducing full GC (V8's "last resort" collection: it
 * compacts, shrinks the heap's limit and releases the pooled pages) gives it
 * back. It runs when no turn is running, at most once per quiet spell; an
 * idle gateway runs no timer for it. The GC stops the process while it runs:
 * about 170 ms with 10,000 live sessions (bench/RESULTS.md), several hundred
 * with a heap of a gigabyte, which is why the growth it waits for is relative
 * too: a large heap is not collected after every small spell of work.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { committedHeap, reclaimNow } from "./LastResortGc.ts"
import { Sessions } from "../session/Sessions.ts"

export interface HeapReclaimStats {
  /** Quiet spells looked at. */
  readonly checks: number
  /** Memory-reducing GCs run. */
  readonly reclaims: number
  /** V8's committed heap memory before and after the last one, and how long it took. */
  readonly last?: { readonly beforeBytes: number; readonly afterBytes: number; readonly ms: number } | undefined
}

export interface HeapReclaimOptions {
  /** How long no turn has run before the heap is looked at. Default 5 s. */
  readonly quietAfter?: Duration.Duration
  /** Growth of V8's committed heap since the last reclaim that makes another worth it, in bytes. Default 32 MiB. */
  readonly minGrowthBytes?: number
  /** The same as a share of the committed heap after the last reclaim; both must be reached. Default 0.25. */
  readonly minGrowthRatio?: number
}

export const DEFAULT_QUIET_AFTER = Duration.seconds(5)
export const DEFAULT_MIN_GROWTH_BYTES = 32 * 1024 * 1024
export const DEFAULT_MIN_GROWTH_RATIO = 0.25

export class HeapReclaim extends Context.Service<HeapReclaim, {
  readonly stats: Effect.Effect<HeapReclaimStats>
}>()("beamclaw/runtime/HeapReclaim") {
  static readonly layer = (options: HeapReclaimOptions = {}) =>
    Layer.effect(HeapReclaim, Effect.gen(function*() {
      const sessions = yield* Sessions
      const quietAfter = options.quietAfter ?? DEFAULT_QUIET_AFTER
      const minGrowth = options.minGrowthBytes ?? DEFAULT_MIN_GROWTH_BYTES
      const minRatio = options.minGrowthRatio ?? DEFAULT_MIN_GROWTH_RATIO
      let stats: HeapReclaimStats = { checks: 0, reclaims: 0 }
      let baseline = committedHeap()
      const look = Effect.sync(() => {
        const before = committedHeap()
        if (before - baseline < Math.max(minGrowth, baseline * minRatio)) {
          stats = { ...stats, checks: stats.checks + 1 }
          return undefined
        }
        const started = performance.now()
        reclaimNow()
        const after = committedHeap()
        baseline = after
        stats = { checks: stats.checks + 1, reclaims: stats.reclaims + 1, last: { beforeBytes: before, afterBytes: after, ms: performance.now() - started } }
        return stats.last
      }).pipe(
        Effect.flatMap((last) =>
          last === undefined ? Effect.void : Effect.logDebug(
            `gave back ${((last.beforeBytes - last.afterBytes) / 2 ** 20).toFixed(1)} MiB of heap after ${Duration.format(quietAfter)} without turns (${last.ms.toFixed(0)} ms)`
          )
        )
      )
      // A turn that took a slot since the quiet was seen is not made to wait for the GC: the next quiet spell looks again.
      const lookIfStillQuiet = Effect.flatMap(sessions.lane, (lane) => lane.running > 0 ? Effect.void : look)
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(sessions.quiet(quietAfter), lookIfStillQuiet)))
      return { stats: Effect.sync(() => stats) }
    }))
}
