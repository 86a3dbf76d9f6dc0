/**
 * The global lane of agent runs (OpenClaw's `main` lane): at most
 * `agents.defaults.maxConcurrent` turns run at once across all sessions,
 * each session still one turn at a time (its actor). A turn waits for a
 * slot before its model call starts, in arrival order; an abort while it
 * waits cancels the wait. Under a burst, the turns that run get the CPU and
 * stream promptly, instead of every turn starting at once and all of them
 * streaming slowly.
 *
 * Inside the lane, turns also start a few at a time (`starting`).
 */
import * as os from "node:os"
import { Clock, Duration, Effect, Exit, Queue, Scope, Semaphore } from "effect"

// Read once: os.availableParallelism() is a system call, and the session policy is read several times per turn.
let parallelism: number | undefined

/** OpenClaw's default when `maxConcurrent` is not set: max(8, available parallelism × 4). */
export const defaultMaxConcurrent = (cores: number = parallelism ??= os.availableParallelism()): number => Math.max(8, cores * 4)

/**
 * Turns in their start-up at once: from taking a lane slot until the model's
 * answer begins. The start-up is the CPU-heavy part of a turn (the session,
 * the transcript, the prompt, the model request), so when a burst of turns
 * arrives they start a few at a time, and the turns already streaming keep
 * the CPU they need to deliver on time (bench/gateway-ws.ts, a thousand turns
 * sent at once: event latency p99 from about 0.75 s to under 0.1 s). It does
 * not limit turns in flight: a turn leaves the start-up as its answer begins.
 */
export const defaultStartCapacity = (cores: number = parallelism ??= os.availableParallelism()): number => Math.max(2, cores)

/**
 * The longest a turn holds a start slot. Past that it is waiting for the
 * model rather than using the CPU, and a slow upstream (seconds to the first
 * token) must not hold up the turns behind it.
 */
export const START_HOLD = Duration.millis(10)

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
  /**
   * Waits for a start slot (see `startCapacity`) and returns its release; it
   * is also released after `START_HOLD` and when the scope closes.
   */
  readonly starting: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** Sets the lane's size now; a larger one lets waiting turns in at once, a smaller one admits none until it is met. */
  readonly resize: (capacity: number) => Effect.Effect<void>
  /** Turns holding a slot now, and the lane's size. */
  readonly stats: Effect.Effect<{ readonly running: number; readonly capacity: number }>
  /**
   * Waits for the next turn to end, then until no turn has held a slot for
   * `after`: the gateway has gone quiet after work. No timer runs while the
   * lane is idle: it sleeps only between a turn's end and the quiet it waits for.
   */
  readonly quiet: (after: Duration.Duration) => Effect.Effect<void>
}

export const make = (options: { readonly startCapacity?: number; readonly startHold?: Duration.Duration } = {}): Effect.Effect<RunLane> => Effect.gen(function*() {
  const startHold = options.startHold ?? START_HOLD
  let capacity = defaultMaxConcurrent()
  let running = 0
  const slots = yield* Semaphore.make(capacity)
  // The fiber's clock, so a test clock drives `quiet` as it drives its sleeps.
  const clock = yield* Clock.Clock
  /** When a turn last took or gave back a slot. */
  let lastChangeAt = 0
  const ended = yield* Queue.sliding<void>(1)
  const enter = () => {
    running++
    lastChangeAt = clock.currentTimeMillisUnsafe()
  }
  const leave = () => {
    running--
    lastChangeAt = clock.currentTimeMillisUnsafe()
    Queue.offerUnsafe(ended, undefined)
  }
  const startSlots = yield* Semaphore.make(Math.max(1, options.startCapacity ?? defaultStartCapacity()))
  const resize = (wanted: number) => Effect.suspend(() => {
    if (wanted === capacity) return Effect.void
    capacity = wanted
    return slots.resize(wanted)
  })
  return {
    withSlot: (effect) =>
      slots.withPermits(1)(Effect.suspend(() => {
        enter()
        return Effect.ensuring(effect, Effect.sync(leave))
      })),
    // takeScoped takes the permit and registers its release in one uninterruptible step (only the wait can be
    // interrupted): with `take` and a finalizer added after it, an interrupt landing between the two lost the
    // permit for good.
    hold: Effect.andThen(
      slots.takeScoped(1),
      Effect.uninterruptible(Effect.andThen(Effect.sync(enter), Effect.addFinalizer(() => Effect.sync(leave))))
    ),
    starting: Effect.gen(function*() {
      // The slot lives in a scope of its own, so it can be given back before the turn's scope closes; closing
      // the turn's scope closes it too.
      const slot = yield* Scope.fork(yield* Scope.Scope)
      yield* startSlots.takeScoped(1).pipe(Scope.provide(slot))
      const release = Scope.close(slot, Exit.void)
      yield* Effect.forkScoped(Effect.andThen(Effect.sleep(startHold), release))
      return release
    }),
    resize,
    stats: Effect.sync(() => ({ running, capacity })),
    quiet: (after) =>
      Effect.andThen(
        Queue.take(ended),
        Effect.suspend(function loop(): Effect.Effect<void> {
          const wait = running > 0 ? Duration.toMillis(after) : lastChangeAt + Duration.toMillis(after) - clock.currentTimeMillisUnsafe()
          // Ends seen while waiting are part of this quiet spell: the next wait needs new work.
          return wait <= 0 ? Effect.asVoid(Queue.clear(ended)) : Effect.andThen(Effect.sleep(Duration.millis(wait)), Effect.suspend(loop))
        })
      )
  }
})
