import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { type DeviceContext, type DeviceToken, GatewayAuth, type PairingEvent } from "../../../src/gateway/auth/GatewayAuth.ts"
import { tempDir } from "../../support/TestApp.ts"
import { authLayer, buildFailure, decodeConfig, makeDevice } from "./AuthHarness.ts"

const NOW = 1_760_000_000_000
const NONCE = "c2VydmVyLW5vbmNl-challenge"
const REMOTE = "203.0.113.7"
const config = decodeConfig({ auth: { token: "secret" } })

type Device = ReturnType<typeof makeDevice>

const context = (overrides: Partial<DeviceContext> = {}): DeviceContext => ({
  expectedNonce: NONCE,
  clientAddress: "127.0.0.1",
  clientId: "cli",
  clientMode: "cli",
  platform: "linux",
  role: "operator",
  scopes: ["operator.read", "operator.write"],
  signatureToken: "secret",
  ...overrides
})

/**
 * The payload OpenClaw's client signs (`buildDeviceAuthPayloadV3` in
 * packages/gateway-client/src/device-auth.ts), spelled out here rather than
 * built with our own helper so a wrong helper cannot pass its own test.
 */
const v3 = (device: Device, c: DeviceContext, signedAt: number, nonce: string) =>
  `v3|${device.id}|${c.clientId}|${c.clientMode}|${c.role}|${c.scopes.join(",")}|${signedAt}|${c.signatureToken ?? ""}|${nonce}|${(c.platform ?? "").trim().toLowerCase()}|${(c.deviceFamily ?? "").trim().toLowerCase()}`
const v2 = (device: Device, c: DeviceContext, signedAt: number, nonce: string) =>
  `v2|${device.id}|${c.clientId}|${c.clientMode}|${c.role}|${c.scopes.join(",")}|${signedAt}|${c.signatureToken ?? ""}|${nonce}`

const signed = (device: Device, c: DeviceContext, options: { signedAt?: number; nonce?: string; payload?: string; publicKey?: string } = {}) => {
  const signedAt = options.signedAt ?? NOW
  const nonce = options.nonce ?? NONCE
  return {
    id: device.id,
    publicKey: options.publicKey ?? device.publicKey,
    signature: device.sign(options.payload ?? v3(device, c, signedAt, nonce)),
    signedAt,
    nonce
  }
}

/** The token verifyDevice handed out (it hands none to a device-token connect: confirmDeviceToken does). */
const tokenOf = (approved: { readonly deviceToken: DeviceToken | undefined }): DeviceToken => {
  if (approved.deviceToken === undefined) return assert.fail("verifyDevice handed out no device token")
  return approved.deviceToken
}

const withAuth = <A, E>(home: string, body: (auth: GatewayAuth["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(NOW)
    return yield* body(yield* GatewayAuth)
  }).pipe(Effect.provide(authLayer(home, config)), Effect.scoped)

describe("device signatures (OpenClaw's connect.params.device)", () => {
  it.effect("a v3 signature over the challenge nonce from a loopback device is approved silently, with a device token", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ platform: "  Linux " })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const events = yield* auth.pairing.events.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
          yield* Effect.yieldNow
          const approved = yield* auth.verifyDevice(signed(device, c), c)
          assert.strictEqual(approved.payloadVersion, "v3")
          assert.isTrue(approved.silentlyApproved)
          assert.strictEqual(approved.device.deviceId, device.id)
          assert.strictEqual(approved.device.approvedVia, "silent")
          assert.deepStrictEqual(approved.device.roles, ["operator"])
          assert.deepStrictEqual(tokenOf(approved).role, "operator")
          assert.match(tokenOf(approved).token, /^[A-Za-z0-9_-]{43}$/)
          const [event] = yield* Fiber.join(events)
          assert.deepStrictEqual(event?.event, "device.pair.resolved")
          // Reconnecting is not a new approval, and the token is reused.
          const again = yield* auth.verifyDevice(signed(device, c), c)
          assert.isFalse(again.silentlyApproved)
          assert.strictEqual(tokenOf(again).token, tokenOf(approved).token)
        }))
      const stat = yield* Effect.promise(() => fs.stat(path.join(home, "devices", "paired.json")))
      assert.strictEqual(stat.mode & 0o777, 0o600)
    }))

  it.effect("v2 payloads and PEM public keys are accepted", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context()
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const approved = yield* auth.verifyDevice(signed(device, c, { payload: v2(device, c, NOW, NONCE) }), c)
          assert.strictEqual(approved.payloadVersion, "v2")
          const pem = yield* auth.verifyDevice(signed(device, c, { publicKey: device.publicKeyPem }), c)
          assert.strictEqual(pem.device.publicKey, device.publicKey)
        }))
    }))

  it.effect("rejects with OpenClaw's reasons and codes: bad signature, stale signedAt, wrong or missing nonce, id mismatch, bad key", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const other = makeDevice()
      const c = context()
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const failure = (identity: Parameters<typeof auth.verifyDevice>[0], ctx = c) =>
            Effect.flip(auth.verifyDevice(identity, ctx)).pipe(Effect.map((e) => e._tag === "DeviceAuthFailed" ? [e.reason, e.code, e.message] : [e._tag]))
          // Signed by another key, or over other fields (scopes the client did not sign).
          assert.deepStrictEqual(yield* failure({ ...signed(device, c), signature: other.sign(v3(device, c, NOW, NONCE)) }), ["device-signature", "DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid"])
          assert.deepStrictEqual(yield* failure(signed(device, c), context({ scopes: ["operator.admin"] })), ["device-signature", "DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid"])
          assert.deepStrictEqual(yield* failure({ ...signed(device, c), signature: "!!not-base64!!" }), ["device-signature", "DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid"])
          // Outside the 2-minute skew either way.
          assert.deepStrictEqual(yield* failure(signed(device, c, { signedAt: NOW - 120_001 })), ["device-signature-stale", "DEVICE_AUTH_SIGNATURE_EXPIRED", "device signature expired"])
          assert.deepStrictEqual(yield* failure(signed(device, c, { signedAt: NOW + 120_001 })), ["device-signature-stale", "DEVICE_AUTH_SIGNATURE_EXPIRED", "device signature expired"])
          // A stale nonce, correctly signed, is still the wrong nonce.
          assert.deepStrictEqual(yield* failure(signed(device, c, { nonce: "old-nonce" })), ["device-nonce-mismatch", "DEVICE_AUTH_NONCE_MISMATCH", "device nonce mismatch"])
          assert.deepStrictEqual(yield* failure({ ...signed(device, c), nonce: "  " }), ["device-nonce-missing", "DEVICE_AUTH_NONCE_REQUIRED", "device nonce required"])
          assert.deepStrictEqual(yield* failure({ ...signed(device, c), id: other.id }), ["device-id-mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH", "device identity mismatch"])
          assert.deepStrictEqual(yield* failure({ ...signed(device, c), publicKey: "AAAA" }), ["device-id-mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH", "device identity mismatch"])
          // Nothing was paired by any of these.
          assert.deepStrictEqual((yield* auth.pairing.list).paired, [])
        }))
    }))

  it.effect("signedAt within the skew is accepted", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context()
      yield* withAuth(home, (auth) => auth.verifyDevice(signed(device, c, { signedAt: NOW - 119_000 }), c))
    }))
})

describe("pairing", () => {
  it.effect("an unpaired non-loopback device gets NOT_PAIRED with a pending request; the operator approves; it then connects", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ clientAddress: REMOTE, displayName: "laptop" })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const seen: Array<PairingEvent> = []
          yield* auth.pairing.events.pipe(Stream.runForEach((event) => Effect.sync(() => seen.push(event))), Effect.forkChild)
          yield* Effect.yieldNow
          const first = yield* Effect.flip(auth.verifyDevice(signed(device, c), c))
          assert.strictEqual(first._tag, "PairingRequired")
          if (first._tag !== "PairingRequired") return
          assert.deepStrictEqual([first.reason, first.deviceId, first.message], ["not-paired", device.id, "pairing required"])
          // A reconnect reuses the pending request and announces nothing new.
          const second = yield* Effect.flip(auth.verifyDevice(signed(device, c), c))
          assert.strictEqual(second._tag === "PairingRequired" ? second.requestId : "", first.requestId)
          const listed = yield* auth.pairing.list
          assert.strictEqual(listed.pending.length, 1)
          assert.deepStrictEqual(
            [listed.pending[0]?.requestId, listed.pending[0]?.deviceId, listed.pending[0]?.remoteIp, listed.pending[0]?.displayName, listed.pending[0]?.isRepair],
            [first.requestId, device.id, REMOTE, "laptop", false]
          )
          const approved = yield* auth.pairing.approve(first.requestId)
          assert.strictEqual(approved.device.approvedVia, "operator")
          const ok = yield* auth.verifyDevice(signed(device, c), c)
          assert.isFalse(ok.silentlyApproved)
          yield* Effect.yieldNow
          assert.deepStrictEqual(seen.map((e) => e.event), ["device.pair.requested", "device.pair.resolved"])
          assert.strictEqual((yield* auth.pairing.list).pending.length, 0)
          assert.strictEqual((yield* Effect.flip(auth.pairing.approve(first.requestId)))._tag, "PairingNotFound")
        }))
    }))

  it.effect("forwarded loopback connections are not local", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ hasProxyHeaders: true })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          assert.strictEqual((yield* Effect.flip(auth.verifyDevice(signed(device, c), c)))._tag, "PairingRequired")
        }))
    }))

  it.effect("a paired remote device asking for a new role or wider scopes needs approval again; narrower scopes do not", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const read = context({ clientAddress: REMOTE, scopes: ["operator.read"] })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const pending = yield* Effect.flip(auth.verifyDevice(signed(device, read), read))
          yield* auth.pairing.approve(pending._tag === "PairingRequired" ? pending.requestId : "")
          yield* auth.verifyDevice(signed(device, read), read)
          const admin = context({ clientAddress: REMOTE, scopes: ["operator.admin"] })
          const scopeUpgrade = yield* Effect.flip(auth.verifyDevice(signed(device, admin), admin))
          assert.deepStrictEqual(scopeUpgrade._tag === "PairingRequired" ? [scopeUpgrade.reason] : [scopeUpgrade._tag], ["scope-upgrade"])
          const node = context({ clientAddress: REMOTE, role: "node", scopes: [] })
          const roleUpgrade = yield* Effect.flip(auth.verifyDevice(signed(device, node), node))
          assert.deepStrictEqual(roleUpgrade._tag === "PairingRequired" ? [roleUpgrade.reason] : [roleUpgrade._tag], ["role-upgrade"])
          assert.isTrue((yield* auth.pairing.list).pending.every((p) => p.isRepair))
          // Approving the scope upgrade widens the grant; read still works (admin covers it).
          yield* auth.pairing.approve(scopeUpgrade._tag === "PairingRequired" ? scopeUpgrade.requestId : "")
          yield* auth.verifyDevice(signed(device, admin), admin)
          yield* auth.verifyDevice(signed(device, read), read)
        }))
    }))

  it.effect("reject drops the request and announces it; remove forgets the device", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ clientAddress: REMOTE })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const pending = yield* Effect.flip(auth.verifyDevice(signed(device, c), c))
          const requestId = pending._tag === "PairingRequired" ? pending.requestId : ""
          const events = yield* auth.pairing.events.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
          yield* Effect.yieldNow
          assert.deepStrictEqual(yield* auth.pairing.reject(requestId), { requestId, deviceId: device.id })
          const [event] = yield* Fiber.join(events)
          assert.deepStrictEqual(event, { event: "device.pair.resolved", payload: { requestId, deviceId: device.id, decision: "rejected", ts: NOW } })
          assert.strictEqual((yield* auth.pairing.list).pending.length, 0)
          assert.strictEqual((yield* Effect.flip(auth.pairing.reject("no-such-request")))._tag, "PairingNotFound")

          const local = context()
          yield* auth.verifyDevice(signed(device, local), local)
          yield* auth.pairing.remove(device.id)
          assert.strictEqual((yield* auth.pairing.list).paired.length, 0)
          assert.strictEqual((yield* Effect.flip(auth.pairing.remove(device.id)))._tag, "PairingNotFound")
          assert.strictEqual((yield* Effect.flip(auth.verifyDevice(signed(device, c), c)))._tag, "PairingRequired")
        }))
    }))

  it.effect("pending requests expire after 5 minutes", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ clientAddress: REMOTE })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const pending = yield* Effect.flip(auth.verifyDevice(signed(device, c), c))
          yield* TestClock.adjust("5 minutes")
          yield* TestClock.adjust("1 millis")
          assert.strictEqual((yield* auth.pairing.list).pending.length, 0)
          assert.strictEqual((yield* Effect.flip(auth.pairing.approve(pending._tag === "PairingRequired" ? pending.requestId : "")))._tag, "PairingNotFound")
        }))
    }))

  it.effect("paired devices, tokens and pending requests persist across restarts", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const paired = makeDevice()
      const waiting = makeDevice()
      const c = context({ clientAddress: REMOTE })
      const { requestId, token } = yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const first = yield* Effect.flip(auth.verifyDevice(signed(paired, c), c))
          yield* auth.pairing.approve(first._tag === "PairingRequired" ? first.requestId : "")
          const ok = yield* auth.verifyDevice(signed(paired, c), c)
          const second = yield* Effect.flip(auth.verifyDevice(signed(waiting, c), c))
          return { requestId: second._tag === "PairingRequired" ? second.requestId : "", token: tokenOf(ok).token }
        }))
      for (const name of ["paired.json", "pending.json"]) {
        const stat = yield* Effect.promise(() => fs.stat(path.join(home, "devices", name)))
        assert.strictEqual(stat.mode & 0o777, 0o600, name)
      }
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const ok = yield* auth.verifyDevice(signed(paired, c), c)
          assert.strictEqual(tokenOf(ok).token, token)
          assert.deepStrictEqual((yield* auth.pairing.list).pending.map((p) => p.requestId), [requestId])
          const principal = yield* auth.checkDeviceToken({ deviceId: paired.id, role: "operator", scopes: ["operator.read"], token }, REMOTE)
          assert.strictEqual(principal.method, "device-token")
        }))
    }))

  it.effect("device tokens: mismatch is rate-limited, scopes beyond the token are refused", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ scopes: ["operator.read"] })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const deviceToken = tokenOf(yield* auth.verifyDevice(signed(device, c), c))
          const presented = { deviceId: device.id, role: "operator", scopes: ["operator.read"], token: deviceToken.token }
          assert.strictEqual((yield* Effect.flip(auth.checkDeviceToken({ ...presented, scopes: ["operator.admin"] }, REMOTE))).reason, "not_allowed")
          assert.strictEqual((yield* Effect.flip(auth.checkDeviceToken({ ...presented, role: "node" }, REMOTE))).reason, "mismatch")
          assert.strictEqual((yield* Effect.flip(auth.checkDeviceToken({ ...presented, token: "" }, REMOTE))).reason, "missing")
          for (let i = 0; i < 9; i++) assert.strictEqual((yield* Effect.flip(auth.checkDeviceToken({ ...presented, token: "guess" }, REMOTE))).reason, "mismatch")
          assert.strictEqual((yield* Effect.flip(auth.checkDeviceToken(presented, REMOTE))).reason, "rate_limited")
          // The shared-secret bucket is separate.
          yield* auth.check({ token: "secret" }, REMOTE)
        }))
    }))

  it.effect("a device-token connect gets no token from verifyDevice; confirmDeviceToken hands back only the live one it presented", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const device = makeDevice()
      const c = context({ scopes: ["operator.read"] })
      yield* withAuth(home, (auth) =>
        Effect.gen(function*() {
          const first = tokenOf(yield* auth.verifyDevice(signed(device, c), c))
          const byToken = context({ scopes: ["operator.read"], signatureToken: first.token, authMethod: "device-token" })
          const approved = yield* auth.verifyDevice(signed(device, byToken), byToken)
          assert.isUndefined(approved.deviceToken)
          const presented = { deviceId: device.id, role: "operator", scopes: ["operator.read"], token: first.token }
          assert.deepStrictEqual(yield* auth.confirmDeviceToken(presented), first)
          const mismatch = (input: typeof presented) => Effect.flip(auth.confirmDeviceToken(input)).pipe(Effect.map((e) => [e.reason, e.message]))
          assert.deepStrictEqual(yield* mismatch({ ...presented, token: `${first.token}x` }), ["mismatch", "device token mismatch"])
          assert.deepStrictEqual(yield* mismatch({ ...presented, token: "" }), ["mismatch", "device token mismatch"])
          assert.deepStrictEqual(yield* mismatch({ ...presented, role: "node" }), ["mismatch", "device token mismatch"])
          assert.deepStrictEqual(yield* mismatch({ ...presented, deviceId: "unknown" }), ["mismatch", "device token mismatch"])
          assert.deepStrictEqual(yield* mismatch({ ...presented, scopes: ["operator.admin"] }), ["mismatch", "device token mismatch"])

          // Rotated: the old token is refused and nothing else is handed out for it.
          const rotated = yield* auth.pairing.rotateToken({ deviceId: device.id, role: "operator" })
          assert.deepStrictEqual(yield* mismatch(presented), ["mismatch", "device token mismatch"])
          assert.deepStrictEqual(yield* auth.confirmDeviceToken({ ...presented, token: rotated.token }), rotated)
          // Revoked: refused, and not reissued behind the revocation's back.
          const revoked = yield* auth.pairing.revokeToken({ deviceId: device.id, role: "operator" })
          assert.deepStrictEqual(yield* mismatch({ ...presented, token: rotated.token }), ["mismatch", "device token mismatch"])
          const list = yield* auth.pairing.list
          assert.deepStrictEqual(list.paired.find((d) => d.deviceId === device.id)?.tokens["operator"], revoked)
        }))
    }))

  it.effect("a corrupt pairing file stops the start with a message naming it", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.promise(() => fs.mkdir(path.join(home, "devices"), { recursive: true }))
      yield* Effect.promise(() => fs.writeFile(path.join(home, "devices", "paired.json"), "{\"x\": {\"deviceId\": 1}}"))
      const failure = yield* buildFailure(home, config)
      assert.include(failure, `${path.join(home, "devices", "paired.json")} is not a valid pairing file`)
    }))
})
