/**
 * A connect that overlaps a device.token.rotate / revoke must not come out
 * holding a valid token: many connects presenting the old token race one
 * rotation (or revocation) on a real gateway. None may receive any token but
 * the one it presented, and none may stay admitted after the change's answer
 * (a connection registered too late to be closed by the rotation would).
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { at, type Closed, connect, connectParams, type Device, type Frame, makeDevice, signDevice, WsClient } from "./WsClient.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway

const RACERS = 50
const ROUNDS = 4

beforeAll(async () => {
  fake = await startFakeAnthropic()
  // Every racer is an unauthenticated socket from 127.0.0.1 until its hello-ok.
  gateway = await startGateway({ anthropicUrl: fake.url, env: { BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP: String(RACERS * 2) } })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const SCOPES = ["operator.read"]

const pairDevice = async () => {
  const device = makeDevice()
  const client = await WsClient.open(gateway.wsUrl)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: gateway.token, scopes: SCOPES })
  const response = await client.request("connect", { ...connectParams(undefined, { scopes: SCOPES }), auth: { token: gateway.token }, device: signed })
  assert.strictEqual(response.ok, true, JSON.stringify(response.error))
  await client.close()
  return { device, token: String(at(response, "payload", "auth", "deviceToken")) }
}

const liveToken = async (deviceId: string): Promise<unknown> =>
  at(JSON.parse(await fs.readFile(path.join(gateway.home, "devices", "paired.json"), "utf8")), deviceId, "tokens", "operator")

interface Racer {
  readonly client: WsClient
  readonly frame: string
}

/** Opened and challenged, with its signed connect ready to go, so sending is all that is left. */
const prepareRacer = async (device: Device, token: string): Promise<Racer> => {
  const client = await WsClient.open(gateway.wsUrl)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token, scopes: SCOPES })
  const frame = JSON.stringify({ type: "req", id: "connect-1", method: "connect", params: { ...connectParams(undefined, { scopes: SCOPES }), auth: { deviceToken: token }, device: signed } })
  return { client, frame }
}

const within = <A>(promise: Promise<A>, ms: number): Promise<A | "timeout"> =>
  Promise.race([promise, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms))])

/**
 * One round, all written back to back: a rotation of another device's token
 * (its file write holds the pairing store busy, as any concurrent pairing
 * would), half the racers' connects, the change, the other half. The gateway
 * reads them in that order, so the later racers pass the token check while
 * the change still waits its turn in the store: the overlap the fix is for.
 */
const race = async (change: "device.token.rotate" | "device.token.revoke") => {
  const { device, token } = await pairDevice()
  const other = await pairDevice()
  const admin = await connect(gateway.wsUrl, gateway.token)
  assert.strictEqual(admin.hello.ok, true)
  const racers = await Promise.all(Array.from({ length: RACERS }, () => prepareRacer(device, token)))
  const half = RACERS / 2
  const busy = admin.client.request("device.token.rotate", { deviceId: other.device.id, role: "operator" })
  for (const racer of racers.slice(0, half)) racer.client.sendRaw(racer.frame)
  const changed = admin.client.request(change, { deviceId: device.id, role: "operator" })
  for (const racer of racers.slice(half)) racer.client.sendRaw(racer.frame)

  assert.strictEqual((await busy).ok, true)
  const answer = await changed
  assert.strictEqual(answer.ok, true, JSON.stringify(answer.error))
  const responses: ReadonlyArray<Frame> = await Promise.all(racers.map((racer) =>
    racer.client.waitFor((frame) => frame.type === "res" && frame.id === "connect-1")
  ))
  const current = await liveToken(device.id)
  const admitted = responses.flatMap((response, index) => response.ok === true ? [{ response, racer: racers[index] }] : [])
  const refused = responses.flatMap((response, index) => response.ok === true ? [] : [{ response, racer: racers[index] }])

  // Whoever was admitted holds the token it presented (never the rotated one, never a reissue after the revoke).
  for (const { response } of admitted) assert.strictEqual(at(response, "payload", "auth", "deviceToken"), token)
  // Refused either as a stale token (the change got to the store first) or, when the change's close-all ran while
  // the connect was in flight, as the connections that close-all reached: 4001 "device removed".
  const refusals = await Promise.all(refused.map(async ({ response, racer }) => ({ response, closed: await racer!.client.closed })))
  let lateRefusals = 0
  for (const { response, closed } of refusals) {
    if (at(response.error?.details, "code") === "AUTH_DEVICE_TOKEN_MISMATCH") {
      assert.strictEqual(response.error?.message, "unauthorized: device token mismatch")
      assert.strictEqual(at(response.error?.details, "authReason"), "mismatch")
      assert.deepStrictEqual(closed, { code: 1008, reason: "unauthorized: device token mismatch" })
    } else {
      lateRefusals += 1
      assert.strictEqual(response.error?.code, "UNAVAILABLE", JSON.stringify(response.error))
      assert.strictEqual(at(response.error, "retryable"), true)
      assert.deepStrictEqual(closed, { code: 4001, reason: "device removed" })
    }
  }
  // After the answer, no connection admitted with the old token stays open.
  const closes: ReadonlyArray<Closed | "timeout"> = await Promise.all(admitted.map(({ racer }) => within(racer!.client.closed, 3000)))
  const stillOpen = closes.filter((closed) => closed === "timeout").length
  assert.strictEqual(stillOpen, 0, `${stillOpen} of ${admitted.length} connections admitted with the old token are still open after the ${change}`)
  for (const closed of closes) assert.deepStrictEqual(closed, { code: 4001, reason: "device removed" })

  // The store still says what the change made it: rotated away from the old token, or revoked (not reissued).
  assert.notStrictEqual(at(current, "token"), change === "device.token.rotate" ? token : undefined)
  if (change === "device.token.revoke") {
    assert.strictEqual(at(current, "token"), token)
    assert.isNumber(at(current, "revokedAtMs"))
  }
  await Promise.all(racers.map((racer) => racer.client.close()))
  await admin.client.close()
  return { admitted: admitted.length, refused: refused.length, lateRefusals }
}

describe("device token changes racing connects", () => {
  const rounds = async (change: "device.token.rotate" | "device.token.revoke") => {
    for (let round = 0; round < ROUNDS; round++) {
      const outcome = await race(change)
      // Every racer was answered one way or the other, and the ones sent after the change cannot all have got in.
      assert.strictEqual(outcome.admitted + outcome.refused, RACERS)
      assert.isAbove(outcome.refused, 0)
    }
  }

  it("a rotation: no racer with the old token gets the new one or stays connected", () => rounds("device.token.rotate"), 60_000)

  it("a revocation: no racer gets a reissued token or stays connected, and the token stays revoked", () => rounds("device.token.revoke"), 60_000)
})
