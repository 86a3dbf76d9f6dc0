/**
 * device.token.rotate / device.token.revoke on a real gateway, with real
 * Ed25519 device identities: a rotation replaces the token (the old one is
 * refused at connect, the new one works), only the device itself gets the new
 * token in-band, a revocation makes the token fail, the device's live
 * connections in that role are closed after the answer, and OpenClaw's
 * authorization bounds (operator.pairing, the caller's own scopes, self-only
 * for device-token sessions, admin for other roles) hold.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, connectParams, type Device, list, makeDevice, signDevice, WsClient } from "./WsClient.ts"

const env = gatewayForFile()

/** A local device (loopback, no proxy headers: approved silently), signing with whatever it sends as its auth token. */
const connectDevice = async (device: Device, auth: { readonly token?: string; readonly deviceToken?: string }, scopes: ReadonlyArray<string>) => {
  const client = await WsClient.open(env.gateway.wsUrl)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: auth.token ?? auth.deviceToken ?? "", scopes })
  const response = await client.request("connect", { ...connectParams(undefined, { scopes }), auth, device: signed })
  return { client, response }
}

/** Pairs a device (silently, over loopback) and returns its first device token. */
const pairDevice = async (scopes: ReadonlyArray<string>) => {
  const device = makeDevice()
  const first = await connectDevice(device, { token: env.gateway.token }, scopes)
  assert.strictEqual(first.response.ok, true, JSON.stringify(first.response.error))
  const token = at(first.response, "payload", "auth", "deviceToken")
  assert.isString(token)
  await first.client.close()
  return { device, token: String(token) }
}

const readPaired = async (): Promise<unknown> => JSON.parse(await fs.readFile(path.join(env.gateway.home, "devices", "paired.json"), "utf8"))

const assertDeviceTokenRefused = async (device: Device, token: string, scopes: ReadonlyArray<string>) => {
  const attempt = await connectDevice(device, { deviceToken: token }, scopes)
  assert.strictEqual(attempt.response.ok, false)
  assert.strictEqual(attempt.response.error?.code, "INVALID_REQUEST")
  assert.strictEqual(at(attempt.response.error?.details, "code"), "AUTH_DEVICE_TOKEN_MISMATCH")
  assert.strictEqual(at(attempt.response.error?.details, "authReason"), "mismatch")
  assert.strictEqual((await attempt.client.closed).code, 1008)
}

describe("device.token.rotate", () => {
  it("a device rotating its own token gets the new one in-band; the old one is refused, the new one works", async () => {
    const scopes = ["operator.read", "operator.pairing"]
    const { device, token: oldToken } = await pairDevice(scopes)
    const bystander = await connectDevice(device, { deviceToken: oldToken }, scopes)
    assert.strictEqual(bystander.response.ok, true, JSON.stringify(bystander.response.error))
    const self = await connectDevice(device, { deviceToken: oldToken }, scopes)
    assert.strictEqual(self.response.ok, true, JSON.stringify(self.response.error))

    const rotated = await self.client.request("device.token.rotate", { deviceId: device.id, role: "operator" })
    assert.strictEqual(rotated.ok, true, JSON.stringify(rotated.error))
    const newToken = at(rotated.payload, "token")
    assert.isString(newToken)
    assert.notStrictEqual(newToken, oldToken)
    const rotatedAtMs = at(rotated.payload, "rotatedAtMs")
    assert.isNumber(rotatedAtMs)
    assert.deepStrictEqual(rotated.payload, { deviceId: device.id, role: "operator", token: newToken, scopes, rotatedAtMs, tokenDelivery: "in-band" })

    // Every connection of the device in that role goes, the caller after its answer.
    assert.deepStrictEqual(await self.client.closed, { code: 4001, reason: "device removed" })
    assert.deepStrictEqual(await bystander.client.closed, { code: 4001, reason: "device removed" })

    await assertDeviceTokenRefused(device, oldToken, scopes)
    const renewed = await connectDevice(device, { deviceToken: String(newToken) }, scopes)
    assert.strictEqual(renewed.response.ok, true, JSON.stringify(renewed.response.error))
    assert.strictEqual(at(renewed.response, "payload", "auth", "deviceToken"), newToken)
    assert.strictEqual(at(renewed.response, "payload", "auth", "issuedAtMs"), rotatedAtMs)
    assert.strictEqual((await renewed.client.request("health")).ok, true)
    await renewed.client.close()

    // Persisted in the pairing store: the new token replaced the old one on disk.
    const paired = await readPaired()
    assert.strictEqual(at(paired, device.id, "tokens", "operator", "token"), newToken)
    assert.strictEqual(at(paired, device.id, "tokens", "operator", "rotatedAtMs"), rotatedAtMs)
    assert.notInclude(JSON.stringify(paired), oldToken)
  })

  it("an operator's rotation withholds the token and can narrow it; the device picks it up from hello-ok", async () => {
    const { device, token: oldToken } = await pairDevice(["operator.read", "operator.write"])
    const live = await connectDevice(device, { token: env.gateway.token }, ["operator.read", "operator.write"])
    assert.strictEqual(live.response.ok, true, JSON.stringify(live.response.error))
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    assert.includeMembers([...list(at(admin.hello, "payload", "features", "methods"))], ["device.token.rotate", "device.token.revoke"])

    const rotated = await admin.client.request("device.token.rotate", { deviceId: device.id, role: "operator", scopes: ["operator.read"] })
    assert.strictEqual(rotated.ok, true, JSON.stringify(rotated.error))
    assert.deepStrictEqual(rotated.payload, {
      deviceId: device.id,
      role: "operator",
      scopes: ["operator.read"],
      rotatedAtMs: at(rotated.payload, "rotatedAtMs"),
      tokenDelivery: "withheld-cross-device"
    })
    assert.isNumber(at(rotated.payload, "rotatedAtMs"))
    // A shared-secret connection of the device in that role is closed too, as OpenClaw; the operator's is not.
    assert.deepStrictEqual(await live.client.closed, { code: 4001, reason: "device removed" })
    assert.strictEqual((await admin.client.request("health")).ok, true)

    await assertDeviceTokenRefused(device, oldToken, ["operator.read"])
    const again = await connectDevice(device, { token: env.gateway.token }, ["operator.read"])
    assert.strictEqual(again.response.ok, true, JSON.stringify(again.response.error))
    const newToken = String(at(again.response, "payload", "auth", "deviceToken"))
    assert.notStrictEqual(newToken, oldToken)
    await again.client.close()
    const byToken = await connectDevice(device, { deviceToken: newToken }, ["operator.read"])
    assert.strictEqual(byToken.response.ok, true, JSON.stringify(byToken.response.error))
    await byToken.client.close()
    // Narrowed: the new token no longer covers write.
    const wider = await connectDevice(device, { deviceToken: newToken }, ["operator.read", "operator.write"])
    assert.strictEqual(at(wider.response.error?.details, "code"), "AUTH_SCOPE_MISMATCH")
    await admin.client.close()
  })
})

describe("device.token.revoke", () => {
  it("a revoked token is refused at connect, its live connections close, and a fresh pairing connect gets a new one", async () => {
    const { device, token } = await pairDevice(["operator.read"])
    const live = await connectDevice(device, { deviceToken: token }, ["operator.read"])
    assert.strictEqual(live.response.ok, true, JSON.stringify(live.response.error))
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)

    const revoked = await admin.client.request("device.token.revoke", { deviceId: device.id, role: "operator" })
    assert.strictEqual(revoked.ok, true, JSON.stringify(revoked.error))
    const revokedAtMs = at(revoked.payload, "revokedAtMs")
    assert.isNumber(revokedAtMs)
    assert.deepStrictEqual(revoked.payload, { deviceId: device.id, role: "operator", revokedAtMs })
    assert.deepStrictEqual(await live.client.closed, { code: 4001, reason: "device removed" })

    await assertDeviceTokenRefused(device, token, ["operator.read"])
    // The paired entry keeps the token's metadata, marked revoked, without the secret.
    const listed = await admin.client.request("device.pair.list")
    const entry = list(at(listed, "payload", "paired")).find((paired) => at(paired, "deviceId") === device.id)
    assert.strictEqual(at(entry, "tokens", 0, "revokedAtMs"), revokedAtMs)
    assert.notInclude(JSON.stringify(listed), token)
    assert.strictEqual(at(await readPaired(), device.id, "tokens", "operator", "revokedAtMs"), revokedAtMs)

    // The device is still paired: the shared secret plus its signature gets it a new token.
    const again = await connectDevice(device, { token: env.gateway.token }, ["operator.read"])
    assert.strictEqual(again.response.ok, true, JSON.stringify(again.response.error))
    const reissued = String(at(again.response, "payload", "auth", "deviceToken"))
    assert.notStrictEqual(reissued, token)
    await again.client.close()
    const byToken = await connectDevice(device, { deviceToken: reissued }, ["operator.read"])
    assert.strictEqual(byToken.response.ok, true, JSON.stringify(byToken.response.error))
    await byToken.client.close()
    await admin.client.close()
  })
})

describe("device token authorization and params", () => {
  it("needs operator.pairing, and a caller cannot touch a token broader than itself or of another role", async () => {
    const { device } = await pairDevice(["operator.read"])
    const reader = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read"] })
    for (const method of ["device.token.rotate", "device.token.revoke"]) {
      const forbidden = await reader.client.request(method, { deviceId: device.id, role: "operator" })
      assert.strictEqual(forbidden.error?.code, "FORBIDDEN")
      assert.strictEqual(forbidden.error?.message, "missing scope: operator.pairing")
      assert.strictEqual(at(forbidden.error?.details, "missingScope"), "operator.pairing")
    }
    await reader.client.close()

    const pairer = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.pairing"] })
    const broader = await pairer.client.request("device.token.rotate", { deviceId: device.id, role: "operator" })
    assert.strictEqual(broader.error?.code, "INVALID_REQUEST")
    assert.strictEqual(broader.error?.message, "device token rotation denied")
    assert.strictEqual(at(broader.error?.details, "reason"), "caller-missing-scope")
    assert.strictEqual(at(broader.error?.details, "scope"), "operator.read")
    const revokeBroader = await pairer.client.request("device.token.revoke", { deviceId: device.id, role: "operator" })
    assert.strictEqual(revokeBroader.error?.message, "device token revocation denied")
    assert.strictEqual(at(revokeBroader.error?.details, "reason"), "caller-missing-scope")
    const nodeRole = await pairer.client.request("device.token.rotate", { deviceId: device.id, role: "node" })
    assert.strictEqual(at(nodeRole.error?.details, "reason"), "role-management-requires-admin")
    await pairer.client.close()

    // A device-token session manages only its own device.
    const other = await pairDevice(["operator.read", "operator.pairing"])
    const session = await connectDevice(other.device, { deviceToken: other.token }, ["operator.read", "operator.pairing"])
    assert.strictEqual(session.response.ok, true, JSON.stringify(session.response.error))
    const crossDevice = await session.client.request("device.token.revoke", { deviceId: device.id, role: "operator" })
    assert.strictEqual(crossDevice.error?.message, "device token revocation denied")
    assert.strictEqual(at(crossDevice.error?.details, "reason"), "device-ownership-mismatch")
    await session.client.close()

    // None of that changed the token.
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    const listed = await admin.client.request("device.pair.list")
    const entry = list(at(listed, "payload", "paired")).find((paired) => at(paired, "deviceId") === device.id)
    assert.isUndefined(at(entry, "tokens", 0, "rotatedAtMs"))
    assert.isUndefined(at(entry, "tokens", 0, "revokedAtMs"))
    await admin.client.close()
  })

  it("bad params, unknown devices and roles, and scopes beyond the approval get error frames naming them", async () => {
    const { device } = await pairDevice(["operator.read"])
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    const message = async (method: string, params: unknown) => (await admin.client.request(method, params)).error?.message ?? ""

    assert.match(await message("device.token.rotate", {}), /^invalid device\.token\.rotate params/)
    assert.match(await message("device.token.rotate", { deviceId: device.id, role: "operator", extra: true }), /^invalid device\.token\.rotate params/)
    assert.match(await message("device.token.rotate", { deviceId: device.id, role: "operator", scopes: [""] }), /^invalid device\.token\.rotate params/)
    assert.match(await message("device.token.rotate", { deviceId: device.id, role: 7 }), /^invalid device\.token\.rotate params/)
    assert.match(await message("device.token.revoke", { deviceId: "", role: "operator" }), /^invalid device\.token\.revoke params/)
    assert.match(await message("device.token.revoke", { deviceId: device.id }), /^invalid device\.token\.revoke params/)

    const unknownDevice = await admin.client.request("device.token.rotate", { deviceId: "no-such-device", role: "operator" })
    assert.strictEqual(unknownDevice.error?.code, "INVALID_REQUEST")
    assert.strictEqual(unknownDevice.error?.message, "device token rotation denied")
    assert.deepInclude(unknownDevice.error?.details, { reason: "unknown-device-or-role", deviceId: "no-such-device", role: "operator" })
    assert.include(String(at(unknownDevice.error?.details, "detail")), "no-such-device")
    const unknownRole = await admin.client.request("device.token.rotate", { deviceId: device.id, role: "node" })
    assert.deepInclude(unknownRole.error?.details, { reason: "unknown-device-or-role", deviceId: device.id, role: "node" })
    const revokeUnknown = await admin.client.request("device.token.revoke", { deviceId: "no-such-device", role: "operator" })
    assert.strictEqual(revokeUnknown.error?.message, "device token revocation denied")
    assert.deepInclude(revokeUnknown.error?.details, { reason: "unknown-device-or-role", deviceId: "no-such-device" })
    const beyond = await admin.client.request("device.token.rotate", { deviceId: device.id, role: "operator", scopes: ["operator.admin"] })
    assert.strictEqual(at(beyond.error?.details, "reason"), "scope-outside-approved-baseline")
    await admin.client.close()
  })
})

/** A device behind a proxy (so not approved silently) asking to pair: its pending request id. */
const requestPairing = async (device: Device, scopes: ReadonlyArray<string>, role = "operator") => {
  const client = await WsClient.open(env.gateway.wsUrl, { headers: { "x-forwarded-for": "203.0.113.9" } })
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: env.gateway.token, scopes, role, clientId: "test", mode: "test" })
  const clientInfo = { id: "test", version: "1", platform: "linux", mode: "test", displayName: "phone" }
  const response = await client.request("connect", { ...connectParams(undefined, { client: clientInfo, role, scopes }), auth: { token: env.gateway.token }, device: signed })
  assert.strictEqual(response.error?.code, "NOT_PAIRED", JSON.stringify(response))
  await client.closed
  return String(at(response.error?.details, "requestId"))
}

const pendingIds = async (client: WsClient) => list(at(await client.request("device.pair.list"), "payload", "pending")).map((request) => at(request, "requestId"))

describe("device.pair.* authorization", () => {
  it("without operator.admin, an approval cannot grant a scope the caller lacks, nor a non-operator role", async () => {
    const pairer = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.pairing", "operator.read"] })
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)

    const escalation = await requestPairing(makeDevice(), ["operator.read", "operator.admin"])
    const refused = await pairer.client.request("device.pair.approve", { requestId: escalation })
    assert.strictEqual(refused.error?.code, "INVALID_REQUEST")
    assert.strictEqual(refused.error?.message, "device pairing approval denied")
    assert.deepStrictEqual(refused.error?.details, { reason: "caller-missing-scope", requestId: escalation, scope: "operator.admin" })
    const node = await requestPairing(makeDevice(), [], "node")
    const nodeRefused = await pairer.client.request("device.pair.approve", { requestId: node })
    assert.strictEqual(at(nodeRefused.error?.details, "reason"), "role-management-requires-admin")
    const unknown = await pairer.client.request("device.pair.approve", { requestId: "no-such-request" })
    assert.strictEqual(at(unknown.error?.details, "reason"), "unknown-request")
    assert.includeMembers([...await pendingIds(admin.client)], [escalation, node])

    // Within the caller's own scopes it goes through; an admin approves the rest.
    const modest = await requestPairing(makeDevice(), ["operator.read"])
    assert.strictEqual((await pairer.client.request("device.pair.approve", { requestId: modest })).ok, true)
    const approved = await admin.client.request("device.pair.approve", { requestId: escalation })
    assert.strictEqual(approved.ok, true, JSON.stringify(approved.error))
    assert.strictEqual((await admin.client.request("device.pair.reject", { requestId: node })).ok, true)
    await pairer.client.close()
    await admin.client.close()
  })

  it("a device-token session without operator.admin sees and manages its own device only", async () => {
    const scopes = ["operator.read", "operator.pairing"]
    const own = await pairDevice(scopes)
    const other = await pairDevice(["operator.read"])
    const foreign = await requestPairing(makeDevice(), ["operator.read"])
    const session = await connectDevice(own.device, { deviceToken: own.token }, scopes)
    assert.strictEqual(session.response.ok, true, JSON.stringify(session.response.error))

    const listed = await session.client.request("device.pair.list")
    assert.deepStrictEqual(list(at(listed, "payload", "pending")), [])
    assert.deepStrictEqual(list(at(listed, "payload", "paired")).map((device) => at(device, "deviceId")), [own.device.id])
    for (const method of ["device.pair.approve", "device.pair.reject"]) {
      const denied = await session.client.request(method, { requestId: foreign })
      assert.strictEqual(denied.error?.code, "INVALID_REQUEST")
      assert.strictEqual(at(denied.error?.details, "reason"), "device-ownership-mismatch", method)
    }
    const removal = await session.client.request("device.pair.remove", { deviceId: other.device.id })
    assert.strictEqual(removal.error?.message, "device pairing removal denied")
    assert.strictEqual(at(removal.error?.details, "reason"), "device-ownership-mismatch")
    await session.client.close()

    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    assert.include([...await pendingIds(admin.client)], foreign)
    const paired = list(at(await admin.client.request("device.pair.list"), "payload", "paired")).map((device) => at(device, "deviceId"))
    assert.includeMembers(paired, [own.device.id, other.device.id])
    assert.strictEqual((await admin.client.request("device.pair.reject", { requestId: foreign })).ok, true)
    await admin.client.close()
  })
})
