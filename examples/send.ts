/**
 * Sends a message to a running gateway over the typed RPC and prints the
 * answer as it streams, then lists the sessions.
 *
 *   BEAMCLAW_TOKEN=... node examples/send.ts "hello"
 *
 * BEAMCLAW_URL defaults to ws://127.0.0.1:18789/rpc. In your own program,
 * import from "beamclaw/client" instead of the source path used here.
 */
import { Cause, Console, Effect, Stream } from "effect"
import { BeamclawClient } from "../src/client/index.ts"

const text = process.argv[2] ?? "hello"

const program = Effect.gen(function*() {
  const client = yield* BeamclawClient
  yield* client.Send({ text }).pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "TextDelta":
          return Effect.sync(() => process.stdout.write(event.text))
        case "TurnCompleted":
          return Console.log(`\n[done: ${event.model}, ${event.usage.output} output tokens]`)
        default:
          return Effect.void
      }
    })
  )
  const sessions = yield* client.ListSessions({})
  yield* Console.log(`sessions: ${sessions.length}`)
  for (const session of sessions) {
    yield* Console.log(`- ${session.key} (${session.entry.turnCount} turns${session.live ? ", live" : ""})`)
  }
})

const exit = await Effect.runPromiseExit(program.pipe(Effect.provide(BeamclawClient.layerConfig)))
if (exit._tag === "Failure") {
  const failure = Cause.findError(exit.cause)
  if (failure._tag === "Failure") console.error(`error: ${Cause.pretty(exit.cause)}`)
  else if (failure.success._tag === "RpcClientError") console.error(`error: cannot reach the gateway at ${process.env["BEAMCLAW_URL"] ?? "ws://127.0.0.1:18789/rpc"} (${failure.success.message})`)
  else console.error(`error: ${failure.success._tag}: ${failure.success.message}`)
  process.exitCode = 1
}
