/**
 * Turns that belong to the gateway rather than to a connection (WebSocket
 * chat.send and agent runs, webhook runs) live here, in the gateway's own
 * scope: a client that leaves or a listener that moves does not stop them,
 * and on shutdown they get a bounded time to finish before being stopped.
 */
import { Clock, Context, Effect, type Fiber, FiberSet, Layer } from "effect"

/** How long shutdown waits for detached runs to finish. */
export const SHUTDOWN_GRACE_MS = 10_000

export class DetachedRuns extends Context.Service<DetachedRuns, {
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<Fiber.Fiber<A, E>>
  readonly running: Effect.Effect<number>
}>()("beamclaw/runtime/DetachedRuns") {
  static readonly layer = Layer.effect(DetachedRuns, Effect.gen(function*() {
    const fibers = yield* FiberSet.make<unknown, unknown>()
    // Registered after the set, so it runs first on shutdown: wait, then let the set interrupt what is left.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if ((yield* FiberSet.size(fibers)) === 0) return
        yield* Effect.logInfo(`waiting up to ${SHUTDOWN_GRACE_MS / 1000}s for ${yield* FiberSet.size(fibers)} detached run(s) to finish`)
        const deadline = (yield* Clock.currentTimeMillis) + SHUTDOWN_GRACE_MS
        while ((yield* FiberSet.size(fibers)) > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("50 millis")
      })
    )
    return DetachedRuns.of({
      fork: (effect) => FiberSet.run(fibers, effect),
      running: FiberSet.size(fibers)
    })
  }))
}
