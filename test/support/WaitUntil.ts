import { Effect } from "effect"

/** Polls `check` every 10 ms until it holds; dies naming `what` after `timeoutMs` (live clock). */
export const waitUntil = (check: Effect.Effect<boolean>, what: string, timeoutMs = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })
