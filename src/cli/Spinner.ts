/**
 * A one-line spinner on stderr while a command waits, only on a terminal.
 * It lives in a scoped fiber, so it stops however the wait ends.
 */
import { Effect, Fiber, Schedule } from "effect"

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

export const start = (label: string) =>
  Effect.gen(function*() {
    if (process.stderr.isTTY !== true) return Effect.void
    let frame = 0
    const fiber = yield* Effect.sync(() => {
      process.stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`)
    }).pipe(Effect.repeat(Schedule.spaced("80 millis")), Effect.forkChild)
    let stopped = false
    return Effect.suspend(() => {
      if (stopped) return Effect.void
      stopped = true
      return Fiber.interrupt(fiber).pipe(Effect.andThen(Effect.sync(() => process.stderr.write("\r\u001b[2K"))))
    })
  })
