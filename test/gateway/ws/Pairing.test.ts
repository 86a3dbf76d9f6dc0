/**
 * Device pairing over the protocol on a real gateway: a device behind a
 * proxy (x-forwarded-for on the upgrade makes a loopback peer remote) gets
 * NOT_PAIRED, operators holding operator.pairing see the request and approve,
 * reject or remove it with device.pair.*, and an approved device reconnects
 * with its device token instead of the shared secret.
 */
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, connectParams, type Device, list, makeDevice, signDevice, WsClient } from "./WsClient.ts"

const env = gatewayForFile()

const proxied = { headers: { "x-forwarded-for": "203.0.113.7" } }
const remoteClient = { id: "test", version: "1", platform: "linux", mode: "test", displayName: "phone" }

/** A device connecting through a proxy, signing with whatever it sends as its auth token. */
const connectDevice = async (device: Device, auth: { readonly token?: string; readonly deviceToken?: string }, scopes: ReadonlyArray<string> = ["operator.read"]) => {
  const client = await WsClient.open(env.gateway.wsUrl, proxied)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: auth.token ?? auth.deviceToken ?? "", scopes, clientId: "test", mode: "test" })
  const response = await client.request("connect", { ...connectParams(undefined, { client: remoteClient, scopes }), auth, device: signed })
  return { client, response }
}

describe("device pairing", () => {
  it("a remote device is NOT_PAIRED until an operator approves it; then it reconnects with its device token", async () => {
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    const reader = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read"] })
    const device = makeDevice()

    const first = await connectDevice(device, { token: env.gateway.token })
    assert.strictEqual(first.response.error?.code, "NOT_PAIRED")
    assert.strictEqual(first.response.error?.message, "pairing required")
    const requestId = at(first.response.error?.details, "requestId")
    assert.isString(requestId)
    assert.deepStrictEqual(first.response.error?.details, { code: "PAIRING_REQUIRED", requestId, reason: "not-paired", deviceId: device.id })
    assert.deepStrictEqual(await first.client.closed, { code: 1008, reason: "pairing required" })

    // Operators with the pairing scope hear about it; a read-only operator does not.
    const requested = await admin.client.waitFor((frame) => frame.event === "device.pair.requested")
    assert.strictEqual(at(requested, "payload", "requestId"), requestId)
    assert.strictEqual(at(requested, "payload", "deviceId"), device.id)
    assert.strictEqual(at(requested, "payload", "remoteIp"), "127.0.0.1")
    assert.isFalse(reader.client.frames.some((frame) => String(frame.event).startsWith("device.pair.")))
    const forbidden = await reader.client.request("device.pair.list")
    assert.strictEqual(forbidden.error?.code, "FORBIDDEN")
    assert.deepStrictEqual(at(forbidden.error?.details, "missingScope"), "operator.pairing")

    const pending = await admin.client.request("device.pair.list")
    assert.deepStrictEqual(list(at(pending, "payload", "pending")).map((request) => at(request, "requestId")), [requestId])

    const approved = await admin.client.request("device.pair.approve", { requestId })
    assert.strictEqual(approved.ok, true, JSON.stringify(approved.error))
    assert.strictEqual(at(approved, "payload", "device", "deviceId"), device.id)
    assert.strictEqual(at(approved, "payload", "device", "approvedVia"), "operator")
    const resolved = await admin.client.waitFor((frame) => frame.event === "device.pair.resolved" && at(frame, "payload", "requestId") === requestId)
    assert.strictEqual(at(resolved, "payload", "decision"), "approved")
    assert.strictEqual((await admin.client.request("device.pair.approve", { requestId })).error?.code, "INVALID_REQUEST")

    const second = await connectDevice(device, { token: env.gateway.token })
    assert.strictEqual(second.response.ok, true, JSON.stringify(second.response.error))
    const deviceToken = at(second.response, "payload", "auth", "deviceToken")
    assert.isString(deviceToken)
    assert.deepStrictEqual(at(second.response, "payload", "auth", "scopes"), ["operator.read"])
    assert.isNumber(at(second.response, "payload", "auth", "issuedAtMs"))
    assert.strictEqual((await second.client.request("health")).ok, true)
    await second.client.close()

    // The device token replaces the shared secret; a wrong one is refused by name.
    const byToken = await connectDevice(device, { deviceToken: String(deviceToken) })
    assert.strictEqual(byToken.response.ok, true, JSON.stringify(byToken.response.error))
    assert.strictEqual(at(byToken.response, "payload", "auth", "deviceToken"), deviceToken)
    const wrong = await connectDevice(device, { deviceToken: "not-the-token" })
    assert.strictEqual(wrong.response.error?.code, "INVALID_REQUEST")
    assert.strictEqual(at(wrong.response.error?.details, "code"), "AUTH_DEVICE_TOKEN_MISMATCH")
    assert.strictEqual((await wrong.client.closed).code, 1008)
    const wider = await connectDevice(device, { deviceToken: String(deviceToken) }, ["operator.admin"])
    assert.strictEqual(at(wider.response.error?.details, "code"), "AUTH_SCOPE_MISMATCH")

    // The paired list never carries the token itself.
    const listed = await admin.client.request("device.pair.list")
    const paired = list(at(listed, "payload", "paired")).find((entry) => at(entry, "deviceId") === device.id)
    assert.deepStrictEqual(at(paired, "tokens"), [{ role: "operator", scopes: ["operator.read"], createdAtMs: at(second.response, "payload", "auth", "issuedAtMs") }])
    assert.notInclude(JSON.stringify(listed), String(deviceToken))

    // Removing the device drops its open connections and it must pair again.
    const removed = await admin.client.request("device.pair.remove", { deviceId: device.id })
    assert.deepStrictEqual(removed.payload, { deviceId: device.id })
    assert.deepStrictEqual(await byToken.client.closed, { code: 4001, reason: "device removed" })
    const after = await connectDevice(device, { token: env.gateway.token })
    assert.strictEqual(after.response.error?.code, "NOT_PAIRED")
    assert.strictEqual((await admin.client.request("device.pair.remove", { deviceId: device.id })).error?.code, "INVALID_REQUEST")
    await admin.client.close()
    await reader.client.close()
  })

  it("a device removing itself gets its answer first, then its connections close with 4001", async () => {
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    const device = makeDevice()
    const scopes = ["operator.read", "operator.pairing"]
    const attempt = await connectDevice(device, { token: env.gateway.token }, scopes)
    const requestId = String(at(attempt.response.error?.details, "requestId"))
    assert.strictEqual((await admin.client.request("device.pair.approve", { requestId })).ok, true)
    const paired = await connectDevice(device, { token: env.gateway.token }, scopes)
    assert.strictEqual(paired.response.ok, true, JSON.stringify(paired.response.error))
    const deviceToken = String(at(paired.response, "payload", "auth", "deviceToken"))
    await paired.client.close()

    const self = await connectDevice(device, { deviceToken }, scopes)
    assert.strictEqual(self.response.ok, true, JSON.stringify(self.response.error))
    const sibling = await connectDevice(device, { deviceToken }, scopes)
    assert.strictEqual(sibling.response.ok, true, JSON.stringify(sibling.response.error))
    const removed = await self.client.request("device.pair.remove", { deviceId: device.id })
    assert.strictEqual(removed.ok, true, JSON.stringify(removed.error))
    assert.deepStrictEqual(removed.payload, { deviceId: device.id })
    assert.deepStrictEqual(await self.client.closed, { code: 4001, reason: "device removed" })
    assert.deepStrictEqual(await sibling.client.closed, { code: 4001, reason: "device removed" })
    // The admin's own connection (shared secret, no device) stays.
    assert.strictEqual((await admin.client.request("health")).ok, true)
    const again = await connectDevice(device, { deviceToken }, scopes)
    assert.strictEqual(again.response.ok, false)
    await again.client.closed
    await admin.client.close()
  })

  it("a rejected request is gone; bad params and unknown ids are INVALID_REQUEST", async () => {
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    const device = makeDevice()
    const attempt = await connectDevice(device, { token: env.gateway.token })
    const requestId = String(at(attempt.response.error?.details, "requestId"))
    const rejected = await admin.client.request("device.pair.reject", { requestId })
    assert.deepStrictEqual(rejected.payload, { requestId, deviceId: device.id })
    const resolved = await admin.client.waitFor((frame) => frame.event === "device.pair.resolved" && at(frame, "payload", "requestId") === requestId)
    assert.strictEqual(at(resolved, "payload", "decision"), "rejected")
    const listed = await admin.client.request("device.pair.list")
    assert.isFalse(list(at(listed, "payload", "pending")).some((request) => at(request, "requestId") === requestId))
    assert.match((await admin.client.request("device.pair.reject", { requestId })).error?.message ?? "", /unknown or expired pairing request/)
    assert.match((await admin.client.request("device.pair.approve", {})).error?.message ?? "", /^invalid device\.pair\.approve params/)
    assert.match((await admin.client.request("device.pair.remove", { deviceId: "" })).error?.message ?? "", /^invalid device\.pair\.remove params/)
    await admin.client.close()
  })

  it("an operator.pairing client (no admin) can manage pairing", async () => {
    const pairer = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.pairing"] })
    const listed = await pairer.client.request("device.pair.list")
    assert.strictEqual(listed.ok, true, JSON.stringify(listed.error))
    assert.strictEqual((await pairer.client.request("health")).error?.code, "FORBIDDEN")
    await pairer.client.close()
  })
})
