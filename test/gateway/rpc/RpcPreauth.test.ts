/**
 * /rpc holds no socket for a client without the token: at most 32
 * unauthenticated sockets per address (the 33rd upgrade gets 503, as on
 * `/`), and one that has not authenticated within the handshake timeout is
 * closed. An authenticated client is unaffected.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { BeamclawClient } from "../../../src/client/index.ts"
import { gatewayForFile } from "../../support/Gateway.ts"

const env = gatewayForFile({ env: { BEAMCLAW_HANDSHAKE_TIMEOUT_MS: "600" } })

const open = (url: string) =>
  new Promise<WebSocket | undefined>((resolve) => {
    const ws = new WebSocket(url)
    ws.addEventListener("open", () => resolve(ws), { once: true })
    ws.addEventListener("error", () => resolve(undefined), { once: true })
  })

describe("/rpc before authentication", () => {
  it("takes at most 32 unauthenticated sockets per address, closes them at the handshake timeout, and leaves an authenticated client alone", async () => {
    const url = `${env.gateway.wsUrl}/rpc`
    const sockets = await Promise.all(Array.from({ length: 34 }, () => open(url)))
    const opened = sockets.filter((ws): ws is WebSocket => ws !== undefined)
    assert.strictEqual(opened.length, 32)
    const closedAt = Promise.all(opened.map((ws) => new Promise<number>((resolve) => ws.addEventListener("close", () => resolve(Date.now()), { once: true }))))

    // An authenticated client connects (its socket still needs a slot: there are none until the others go).
    const started = Date.now()
    const closed = await closedAt
    assert.isBelow(Math.max(...closed) - started, 5000, "closed at the 600 ms timeout, not left open")
    const status = await Effect.runPromise(
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        yield* Effect.sleep("1 second")
        return yield* client.Status()
      }).pipe(Effect.provide(BeamclawClient.layer({ url, token: env.gateway.token })), Effect.scoped)
    )
    assert.isAbove(status.uptimeMs, 0, "an authenticated client outlives the timeout")
  })
})
