/**
 * What the gateway sent before a close frame reaches a client that is still
 * reading it, however slowly: the socket is not destroyed while its unsent
 * output keeps falling. The case here is OpenClaw's self-rotation of a device
 * token on a slow link, after large answers: losing the tail would lose the
 * new token, the old one being dead. A client that reads nothing is still cut
 * off about a second (the close grace) after the close frame.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { connectRaw, fillHistory, type RawWsClient, wholeHistory } from "./RawWsClient.ts"
import { at, connectParams, type Device, makeDevice, signDevice, WsClient } from "./WsClient.ts"

const env = gatewayForFile()

const SESSION = "big-history"
const SCOPES = ["operator.read", "operator.pairing"]
/** About 27 MB of answers: more than the kernel's socket buffers hold, so most of it waits in the gateway's. */
const HISTORIES = 5

beforeAll(() => fillHistory(env.gateway.wsUrl, env.gateway.token, SESSION))

/** Pairs a device (silently, over loopback, with the shared token) and returns its device token. */
const pairDevice = async (): Promise<{ readonly device: Device; readonly token: string }> => {
  const device = makeDevice()
  const client = await WsClient.open(env.gateway.wsUrl)
  const nonce = String(at(await client.challenge(), "payload", "nonce"))
  const signed = signDevice(device, { nonce, token: env.gateway.token, scopes: SCOPES })
  const hello = await client.request("connect", { ...connectParams(undefined, { scopes: SCOPES }), auth: { token: env.gateway.token }, device: signed })
  const token = at(hello.payload, "auth", "deviceToken")
  if (typeof token !== "string") throw new Error(`no device token: ${JSON.stringify(hello.error)}`)
  await client.close()
  return { device, token }
}

/**
 * A raw connection of a paired device on its device token that stops reading, asks for large answers and then
 * rotates its own token: the gateway answers, then closes every connection of the device (4001), this one included.
 */
const rotateBehindLargeAnswers = async (): Promise<{ readonly client: RawWsClient; readonly histories: ReadonlyArray<string>; readonly rotation: string }> => {
  const { device, token } = await pairDevice()
  const { client } = await connectRaw(env.gateway.port, (nonce) => ({
    ...connectParams(undefined, { scopes: SCOPES }),
    auth: { deviceToken: token },
    device: signDevice(device, { nonce, token, scopes: SCOPES })
  }))
  client.pause()
  const histories: Array<string> = []
  for (let i = 0; i < HISTORIES; i++) histories.push(client.request("chat.history", wholeHistory(SESSION)))
  // Requests run concurrently: the answers must be queued before the rotation's, whose close would drop any after it.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const rotation = client.request("device.token.rotate", { deviceId: device.id, role: "operator" })
  return { client, histories, rotation }
}

describe("the output before a close frame", () => {
  it("reaches a client reading it slowly, answers and new token first, then the close", async () => {
    const { client, histories, rotation } = await rotateBehindLargeAnswers()
    // About 5 MB/s, in bursts: with the socket dropped a second after the close, most of it would be lost.
    client.trickle(256 * 1024, 50)
    await client.ended
    for (const id of histories) {
      const answers = client.responses(id)
      assert.strictEqual(answers.length, 1, `the answer to ${id} came whole (${client.bytesRead} bytes read in all)`)
      assert.strictEqual(answers[0]?.frame.ok, true)
      assert.isAbove(answers[0]?.bytes ?? 0, 5_000_000)
    }
    const rotated = client.responses(rotation)[0]?.frame
    assert.strictEqual(rotated?.ok, true, JSON.stringify(rotated?.error))
    assert.isString(at(rotated?.payload, "token"))
    assert.deepStrictEqual(client.closeFrame, { code: 4001, reason: "device removed" })
  }, 60_000)

  it("does not hold a client that reads nothing: it is cut off within the close grace", async () => {
    const { client, rotation } = await rotateBehindLargeAnswers()
    // The close went out as the rotation was answered; past its grace (1 s) the socket is gone, and what the
    // gateway still held for it with it. Reading now finds only what the kernel had taken, and no close frame.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    client.resume()
    await client.ended
    assert.isUndefined(client.closeFrame, "the gateway dropped the socket instead of waiting for the client")
    assert.deepStrictEqual(client.responses(rotation), [])
    assert.isBelow(client.bytesRead, HISTORIES * 5_000_000)
  }, 60_000)
})
