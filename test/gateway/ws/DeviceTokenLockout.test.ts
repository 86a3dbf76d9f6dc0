/**
 * A paired device reconnecting with its own token must not lock itself out:
 * the shared secret it does not send counts as a failed attempt only if its
 * device token fails too (OpenClaw's connect auth), and a lockout of the
 * shared secret (someone guessing it from the same address) does not stop a
 * good device token. The rate limit applies to loopback here.
 */
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, connectParams, type Device, makeDevice, signDevice, WsClient } from "./WsClient.ts"

const env = gatewayForFile({ config: { gateway: { auth: { rateLimit: { maxAttempts: 3, exemptLoopback: false } } } } })

const scopes = ["operator.read"]

const connectDevice = async (device: Device, auth: { readonly token?: string; readonly deviceToken?: string }) => {
  const client = await WsClient.open(env.gateway.wsUrl)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: auth.token ?? auth.deviceToken ?? "", scopes })
  const response = await client.request("connect", { ...connectParams(undefined, { scopes }), auth, device: signed })
  await client.close()
  return response
}

const rejectionCode = (response: Awaited<ReturnType<typeof connectDevice>>) =>
  response.ok === true ? "ok" : String(at(response.error?.details, "code") ?? response.error?.code)

describe("a paired device's own token", () => {
  it("reconnects any number of times, and still works while the shared secret is locked out", async () => {
    const device = makeDevice()
    const first = await connectDevice(device, { token: env.gateway.token })
    assert.strictEqual(first.ok, true, JSON.stringify(first.error))
    const deviceToken = String(at(first, "payload", "auth", "deviceToken"))

    // As OpenClaw's apps reconnect: the device token in both fields. Five times, over a limit of three.
    const reconnects = []
    for (let i = 0; i < 5; i++) reconnects.push(rejectionCode(await connectDevice(device, { token: deviceToken, deviceToken })))
    assert.deepStrictEqual(reconnects, ["ok", "ok", "ok", "ok", "ok"])

    // Someone at the same address guesses the shared secret until it locks.
    const guesses = []
    for (let i = 0; i < 4; i++) {
      const { client, hello } = await connect(env.gateway.wsUrl, `wrong-${i}`).catch(() => ({ client: undefined, hello: undefined }))
      guesses.push(hello === undefined ? "closed" : rejectionCode(hello))
      await client?.close()
    }
    assert.strictEqual(guesses.at(-1), "AUTH_RATE_LIMITED", guesses.join(", "))

    // The device's own token is checked in its own bucket: it still connects.
    assert.strictEqual(rejectionCode(await connectDevice(device, { deviceToken })), "ok")
    // A wrong device token is refused as such (and counts in the device-token bucket).
    assert.strictEqual(rejectionCode(await connectDevice(device, { deviceToken: "not-the-token" })), "AUTH_DEVICE_TOKEN_MISMATCH")
  })
})
