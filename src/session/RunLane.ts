/**
 * The global lane of agent runs (OpenClaw's `main` lane): at most
 * `agents.defaults.maxConcurrent` turns run at once across all sessions,
 * each session still one turn at a time (its actor). A turn waits for a
 * slot before its model call starts, in arrival order; an abort while it
 * waits cancels the wait. Under a burst, the turns that run get the CPU and
 * stream promptly, instead of every turn starting at once and all of them
 * streaming slowly.
 */
import * as os from "node:os"
import { Effect, type Scope, Semaphore } from "effect"

// Read once: os.availableParallelism() is a system call, and the session policy is read several times per turn.
let parallelism: number | undefined

/** OpenClaw's default when `maxConcurrent` is not set: max(8, available parallelism × 4). */
export const defaultMaxConcurrent = (cores: number = parallelism ??= os.availableParallelism()): number => Math.max(8, cores * 4)

/**
 * The lane's size has one writer, `resize`, which the session host calls with
 * each config change, in order. A turn only takes a slot: when turns also set
 * the size from the policy they had read, one that read it just before a
 * change could put the old size back after the change was applied.
 */
export interface RunLane {
  /** Runs `effect` holding one slot of the lane. */
  readonly withSlot: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Waits for a slot and holds it until the scope closes. */
  readonly hold: Effect.Effect<void, never, Scope.Scope>
  /** Sets the lane's size now; a larger one lets waiting turns in at once, a smaller one admits none until it is met. */
  readonly resize: (capacity: number) => Effect.Effect<void>
  /** Turns holding a slot now, and the lane's size. */
  readonly stats: Effect.Effect<{ readonly running: number; readonly capacity: number }>
}

export const make: Effect.Effect<RunLane> = Effect.gen(function*() {
  let capacity = defaultMaxConcurrent()
  let running = 0
  const slots = yield* Semaphore.make(capacity)
  const resize = (wanted: number) => Effect.suspend(() => {
    if (wanted === capacity) return Effect.void
    capacity = wanted
    return slots.resize(wanted)
  })
  return {
    withSlot: (effect) =>
      slots.withPermits(1)(Effect.suspend(() => {
        running++
        return Effect.ensuring(effect, Effect.sync(() => { running-- }))
      })),
    hold: Effect.uninterruptibleMask((restore) =>
      Effect.andThen(
        restore(slots.take(1)),
        Effect.andThen(
          Effect.sync(() => { running++ }),
          Effect.addFinalizer(() => Effect.andThen(Effect.sync(() => { running-- }), slots.release(1)))
        )
      )
    ),
    resize,
    stats: Effect.sync(() => ({ running, capacity }))
  }
})
