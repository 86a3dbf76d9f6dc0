/**
 * A client that stops reading must not make the gateway hold its answers
 * without limit: past hello-ok's maxBufferedBytes (50 MiB) of output waiting
 * for it, in the gateway's queue or in the socket's own buffer, it is
 * dropped. The client here speaks WebSocket on a raw TCP socket so that it
 * can stop reading (Node's WebSocket always reads).
 */
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { connectParams, connect } from "./WsClient.ts"

const env = gatewayForFile()

/** A masked client text frame (RFC 6455 §5.2). */
const textFrame = (text: string): Buffer => {
  const payload = Buffer.from(text, "utf8")
  const mask = randomBytes(4)
  const length = payload.length
  const header = length < 126
    ? Buffer.from([0x81, 0x80 | length])
    : length < 65536
    ? Buffer.concat([Buffer.from([0x81, 0x80 | 126]), Buffer.from([length >> 8, length & 0xff])])
    : (() => {
      const extended = Buffer.alloc(8)
      extended.writeBigUInt64BE(BigInt(length))
      return Buffer.concat([Buffer.from([0x81, 0x80 | 127]), extended])
    })()
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0)
  return Buffer.concat([header, mask, masked])
}

describe("a client that stops reading", () => {
  it("is dropped once 50 MiB of answers wait for it, instead of the gateway holding them all", async () => {
    // A session whose history answer is about 5.5 MB (messages under chat.history's 128 KiB each, 6 MiB in all).
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const note = "n".repeat(100_000)
    for (let i = 0; i < 55; i++) {
      const injected = await client.request("chat.inject", { sessionKey: "big-history", message: `${i} ${note}` })
      assert.isUndefined(injected.error)
    }
    await client.close()

    const socket = net.connect(env.gateway.port, "127.0.0.1")
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve())
      socket.once("error", reject)
    })
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    await new Promise<void>((resolve) => socket.once("data", () => resolve()))
    // Watched from the start: the gateway may drop the socket while the requests are still going out.
    socket.on("error", () => {})
    const ended = new Promise<boolean>((resolve) => {
      socket.once("close", () => resolve(true))
      setTimeout(() => resolve(false), 30_000)
    })
    // From here on nothing is read, while twenty 5.5 MB answers (110 MB) are asked for.
    socket.pause()
    socket.write(textFrame(JSON.stringify({ type: "req", id: "c", method: "connect", params: connectParams(env.gateway.token) })))
    // One at a time, so each answer has left the gateway's own queue (for the socket's buffer) before the next.
    for (let i = 0; i < 20; i++) {
      if (socket.destroyed) break
      socket.write(textFrame(JSON.stringify({ type: "req", id: `h${i}`, method: "chat.history", params: { sessionKey: "big-history", limit: 1000, maxChars: 120_000 } })))
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))

    let received = 0
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
    })
    socket.resume()
    assert.isTrue(await ended, "the gateway dropped the connection")
    assert.isBelow(received, 90 * 1024 * 1024, `it did not send all 110 MB (${received} bytes came)`)
    socket.destroy()
    // The gateway is fine for everyone else.
    const after = await connect(env.gateway.wsUrl, env.gateway.token)
    assert.strictEqual((await after.client.request("health")).ok, true)
    await after.client.close()
  }, 60_000)
})
