/**
 * A client that stops reading must not make the gateway hold output for it
 * without limit. What it is behind by counts what waits in the gateway's
 * queue and what sits unsent in the socket's own buffer. Events (broadcast to
 * it) stop at hello-ok's maxBufferedBytes (50 MiB): past that, one closes it
 * (1008 "slow consumer"). Answers to its own requests stop only at twice
 * that, so a client that asks for a few large answers and reads them late is
 * not cut off for it. The client here speaks WebSocket on a raw TCP socket so
 * that it can stop reading (Node's WebSocket always reads).
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { connectRawOperator, fillHistory, type RawWsClient, wholeHistory } from "./RawWsClient.ts"
import { connect } from "./WsClient.ts"

const env = gatewayForFile()

const SESSION = "big-history"
/** chat.history of SESSION is about 5.5 MB: an answer bigger than this came whole. */
const HISTORY_BYTES = 5_000_000
const MiB = 1024 * 1024

beforeAll(() => fillHistory(env.gateway.wsUrl, env.gateway.token, SESSION))

/** Asks for `count` whole histories without reading them, one at a time, so each answer has left the gateway's queue for the socket's buffer before the next. */
const askWithoutReading = async (client: RawWsClient, count: number): Promise<ReadonlyArray<string>> => {
  client.pause()
  const ids: Array<string> = []
  for (let i = 0; i < count; i++) {
    if (client.socket.destroyed) break
    ids.push(client.request("chat.history", wholeHistory(SESSION)))
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  await new Promise((resolve) => setTimeout(resolve, 1000))
  return ids
}

const answeredWhole = (client: RawWsClient, ids: ReadonlyArray<string>): number =>
  ids.filter((id) => client.responses(id).some(({ frame, bytes }) => frame.ok === true && bytes > HISTORY_BYTES)).length

/** Whether the gateway ended the connection within `ms`. */
const endsWithin = (client: RawWsClient, ms: number): Promise<boolean> =>
  Promise.race([client.ended.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])

/** The gateway is fine for everyone else. */
const assertHealthy = async () => {
  const after = await connect(env.gateway.wsUrl, env.gateway.token)
  assert.strictEqual((await after.client.request("health")).ok, true)
  await after.client.close()
}

describe("a client that stops reading", () => {
  it("is not closed for answers it asked for while it is less than twice maxBufferedBytes behind", async () => {
    const { client } = await connectRawOperator(env.gateway.port, env.gateway.token)
    // About 82 MB: well past 50 MiB, short of 100 MiB even before the kernel's buffers take their share.
    const ids = await askWithoutReading(client, 15)
    client.resume()
    const health = client.request("health")
    await client.waitFor((frame) => frame.type === "res" && frame.id === health, 30_000)
    assert.strictEqual(answeredWhole(client, ids), 15)
    assert.isUndefined(client.closeFrame)
    assert.isFalse(client.socket.destroyed)
    client.destroy()
  }, 60_000)

  it("is closed as slow by an event once it is more than maxBufferedBytes behind, after what it was sent", async () => {
    const { client } = await connectRawOperator(env.gateway.port, env.gateway.token)
    // About 66 MB asked for: past 50 MiB behind, even with what the kernel's buffers took.
    const ids = await askWithoutReading(client, 12)
    // A chat note is an event every operator receives, and not one a slow client may just miss.
    const other = await connect(env.gateway.wsUrl, env.gateway.token)
    const injected = await other.client.request("chat.inject", { sessionKey: "elsewhere", message: "hello" })
    assert.strictEqual(injected.ok, true, JSON.stringify(injected.error))
    await other.client.close()
    client.resume()
    assert.isTrue(await endsWithin(client, 30_000), "the gateway closed the connection")
    assert.deepStrictEqual(client.closeFrame, { code: 1008, reason: "slow consumer" })
    assert.strictEqual(answeredWhole(client, ids), 12, "every answer queued before the event went out first")
    assert.isFalse(client.received.some(({ frame }) => frame.type === "event" && frame.event === "chat"), "the event that did not fit was not sent")
    await assertHealthy()
  }, 60_000)

  it("is dropped past twice maxBufferedBytes of its own answers, instead of the gateway holding them all", async () => {
    const { client } = await connectRawOperator(env.gateway.port, env.gateway.token)
    // About 137 MB asked for, never read: the answer asked for past 100 MiB behind closes it, and as it reads
    // nothing it is cut off a second later, with what the gateway still held for it.
    const ids = await askWithoutReading(client, 25)
    client.resume()
    assert.isTrue(await endsWithin(client, 30_000), "the gateway dropped the connection")
    assert.isBelow(answeredWhole(client, ids), ids.length)
    assert.isBelow(client.bytesRead, 110 * MiB, `it was not sent every answer (${client.bytesRead} bytes came)`)
    await assertHealthy()
  }, 60_000)
})
