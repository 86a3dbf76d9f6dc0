import { describe, expect, it } from "vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { BeamclawClient } from "../../src/client/index.ts"
import type { SessionEvent } from "../../src/gateway/rpc/Rpcs.ts"
import { gatewayForFile } from "../support/Gateway.ts"
import { connect } from "./ws/WsClient.ts"

const env = gatewayForFile()

describe("session events across surfaces", () => {
  it("an RPC subscriber sees turns sent over the WebSocket protocol and the OpenAI endpoint", async () => {
    const program = Effect.gen(function*() {
      const client = yield* BeamclawClient
      const seen: Array<SessionEvent> = []
      const subscribed = yield* Deferred.make<void>()
      const watcher = yield* client.Subscribe({ sessionKey: "main" }).pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event)).pipe(Effect.andThen(event._tag === "Subscribed" ? Deferred.succeed(subscribed, undefined) : Effect.void))),
        Effect.forkChild
      )
      yield* Deferred.await(subscribed)
      const { client: ws } = yield* Effect.promise(() => connect(env.gateway.wsUrl, env.gateway.token))
      yield* Effect.promise(() => ws.request("chat.send", { sessionKey: "main", message: "over websocket", idempotencyKey: "evt-1" }))
      yield* Effect.promise(() =>
        fetch(`${env.gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${env.gateway.token}`, "content-type": "application/json", "x-beamclaw-session-key": "main" },
          body: JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "over http" }] })
        }).then((response) => response.text())
      )
      const deadline = Date.now() + 5000
      while (seen.filter((e) => e._tag === "Turn" && e.event._tag === "TurnCompleted").length < 2 && Date.now() < deadline) yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(watcher)
      yield* Effect.promise(() => ws.close())
      return seen
    })
    const seen = await Effect.runPromise(program.pipe(Effect.provide(BeamclawClient.layer({ url: env.gateway.wsUrl, token: env.gateway.token })), Effect.orDie))
    const texts = seen.flatMap((e) => e._tag === "Turn" && e.event._tag === "TurnCompleted" ? [e.event.text] : [])
    expect(texts).toContain("echo: over websocket")
    expect(texts.some((t) => t.includes("over http"))).toBe(true)
  })
})
