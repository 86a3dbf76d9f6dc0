/**
 * A wrong token on /rpc counts toward the rate limit once per socket: on the
 * upgrade that carried it (whether the socket outlives the handshake deadline
 * would otherwise tell a guesser the answer for free), not again when the
 * socket's first request carries the same header.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import { BeamclawClient } from "../../../src/client/index.ts"
import { gatewayForFile } from "../../support/Gateway.ts"

const env = gatewayForFile({
  config: { gateway: { auth: { mode: "token", rateLimit: { maxAttempts: 3, windowMs: 60_000, lockoutMs: 60_000, exemptLoopback: false } } } }
})

const statusWith = (url: string, token: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const client = yield* BeamclawClient
      return yield* client.Status()
    }).pipe(
      Effect.provide(BeamclawClient.layer({ url, token })),
      Effect.scoped,
      Effect.match({ onSuccess: () => "ok", onFailure: (error) => error._tag === "AuthFailed" ? error.reason : error._tag })
    )
  )

/** Opens /rpc with a bearer on the upgrade and sends nothing. */
const upgradeOnly = (url: string, token: string) =>
  new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
    ws.once("open", () => {
      ws.close()
      resolve()
    })
    ws.once("error", reject)
  })

describe("/rpc and the auth rate limit", () => {
  it("counts a wrong token once per socket, on the upgrade that carried it", async () => {
    const url = `${env.gateway.wsUrl}/rpc`
    // Three failures allowed, the fourth attempt locked out (maxAttempts 3).
    assert.strictEqual(await statusWith(url, "wrong-1"), "mismatch", "one failure, not two")
    // A guess on the upgrade alone, with no request, counts too.
    await upgradeOnly(url, "wrong-2")
    assert.strictEqual(await statusWith(url, "wrong-3"), "mismatch", "two failures so far: not locked out yet")
    assert.strictEqual(await statusWith(url, env.gateway.token), "rate_limited", "the third failure locked the address out")
  })
})
