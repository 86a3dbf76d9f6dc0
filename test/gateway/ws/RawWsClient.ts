/**
 * A WebSocket client on a bare TCP socket, for tests of clients that do not
 * keep up: it can stop reading, or read in small bursts as on a slow link
 * (Node's WebSocket always reads as fast as it can). It speaks just enough of
 * RFC 6455 for the gateway: masked text frames out; text and close frames in,
 * parsed as they are read.
 */
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { at, connect, connectParams, type Frame } from "./WsClient.ts"

/** A masked client frame (RFC 6455 §5.2). */
const clientFrame = (opcode: number, payload: Buffer): Buffer => {
  const mask = randomBytes(4)
  const length = payload.length
  const first = 0x80 | opcode
  const header = length < 126
    ? Buffer.from([first, 0x80 | length])
    : length < 65536
    ? Buffer.from([first, 0x80 | 126, length >> 8, length & 0xff])
    : (() => {
      const extended = Buffer.alloc(10)
      extended[0] = first
      extended[1] = 0x80 | 127
      extended.writeBigUInt64BE(BigInt(length), 2)
      return extended
    })()
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0)
  return Buffer.concat([header, mask, masked])
}

/** A frame as read, with its size; the payload of a large one is left out (the test holds many). */
export interface Received {
  readonly frame: Frame
  readonly bytes: number
}

const KEPT_PAYLOAD_BYTES = 64 * 1024

export class RawWsClient {
  readonly received: Array<Received> = []
  /** The close frame the gateway sent, once read. */
  closeFrame: { readonly code: number; readonly reason: string } | undefined
  /** Bytes read from the socket, WebSocket framing included. */
  bytesRead = 0
  /** Resolves when the TCP connection is gone (the gateway's close, or its destroy). */
  readonly ended: Promise<void>

  private readonly chunks: Array<Buffer> = []
  private available = 0
  private budget = Number.POSITIVE_INFINITY
  private ticker: ReturnType<typeof setInterval> | undefined
  private counter = 0

  readonly socket: net.Socket

  private constructor(socket: net.Socket, leftover: Buffer) {
    this.socket = socket
    this.ended = new Promise((resolve) => socket.once("close", () => resolve()))
    // Once the gateway drops the socket, the close answer below may hit a reset: that is what is under test, not a failure.
    socket.on("error", () => {})
    socket.on("close", () => this.stopTicker())
    socket.on("data", (chunk: Buffer) => {
      this.bytesRead += chunk.length
      this.chunks.push(chunk)
      this.available += chunk.length
      this.parse()
      this.budget -= chunk.length
      if (this.budget <= 0) socket.pause()
    })
    if (leftover.length > 0) {
      this.chunks.push(leftover)
      this.available += leftover.length
      this.parse()
    }
  }

  /** Opens a TCP connection to the gateway and upgrades it; reading goes on at full speed until paused. */
  static open = (port: number): Promise<RawWsClient> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1")
      socket.once("error", reject)
      socket.once("connect", () => {
        socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
      })
      let head = Buffer.alloc(0)
      const onHead = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end === -1) return
        socket.off("data", onHead)
        socket.off("error", reject)
        const status = head.subarray(0, end).toString("latin1")
        if (!status.startsWith("HTTP/1.1 101")) {
          socket.destroy()
          return reject(new Error(`upgrade refused: ${status}`))
        }
        // The challenge may have come in the same read as the 101.
        resolve(new RawWsClient(socket, head.subarray(end + 4)))
      }
      socket.on("data", onHead)
    })

  send(value: unknown): void {
    this.socket.write(clientFrame(0x1, Buffer.from(JSON.stringify(value), "utf8")))
  }

  request(method: string, params?: unknown, id = `raw${++this.counter}`): string {
    this.send({ type: "req", id, method, ...(params === undefined ? {} : { params }) })
    return id
  }

  /** Stops reading: what the gateway sends piles up in the kernel's buffers, then in its own. */
  pause(): void {
    this.stopTicker()
    this.socket.pause()
  }

  /** Reads as fast as the data comes. */
  resume(): void {
    this.stopTicker()
    this.budget = Number.POSITIVE_INFINITY
    this.socket.resume()
  }

  /** Reads about `bytes` every `everyMs`, and nothing in between: a client on a slow link. */
  trickle(bytes: number, everyMs: number): void {
    this.stopTicker()
    const tick = () => {
      this.budget = bytes
      this.socket.resume()
    }
    tick()
    this.ticker = setInterval(tick, everyMs)
  }

  responses(id: string): ReadonlyArray<Received> {
    return this.received.filter(({ frame }) => frame.type === "res" && frame.id === id)
  }

  /** Waits for the first frame (read or to come) matching `predicate`, reading as the client currently does. */
  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const found = this.received.find(({ frame }) => predicate(frame))
      if (found !== undefined) return found.frame
      if (this.socket.destroyed) throw new Error(`socket closed while waiting; ${this.received.length} frames read`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for a frame; ${this.received.length} frames read`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  destroy(): void {
    this.stopTicker()
    this.socket.destroy()
  }

  private stopTicker(): void {
    if (this.ticker !== undefined) clearInterval(this.ticker)
    this.ticker = undefined
  }

  /** The first `count` buffered bytes, consumed or not. */
  private bytes(count: number, consume: boolean): Buffer {
    const parts: Array<Buffer> = []
    let needed = count
    let index = 0
    while (needed > 0) {
      const chunk = this.chunks[index]
      if (chunk === undefined) throw new Error("not enough bytes buffered")
      const part = chunk.length <= needed ? chunk : chunk.subarray(0, needed)
      parts.push(part)
      needed -= part.length
      if (!consume) index++
      else if (part.length === chunk.length) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(part.length)
    }
    if (consume) this.available -= count
    return parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts)
  }

  /** Takes every whole frame buffered so far (the gateway's frames are unmasked and not fragmented). */
  private parse(): void {
    while (this.available >= 2) {
      const head = this.bytes(Math.min(this.available, 10), false)
      const opcode = (head[0] ?? 0) & 0x0f
      const short = (head[1] ?? 0) & 0x7f
      const headerLength = short === 126 ? 4 : short === 127 ? 10 : 2
      if (head.length < headerLength) return
      const length = short === 126 ? head.readUInt16BE(2) : short === 127 ? Number(head.readBigUInt64BE(2)) : short
      if (this.available < headerLength + length) return
      this.bytes(headerLength, true)
      const payload = length === 0 ? Buffer.alloc(0) : this.bytes(length, true)
      if (opcode === 0x1) {
        const parsed: Frame = JSON.parse(payload.toString("utf8"))
        this.received.push({ frame: length > KEPT_PAYLOAD_BYTES ? { ...parsed, payload: undefined } : parsed, bytes: length })
      } else if (opcode === 0x8) {
        this.closeFrame = { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString("utf8") }
        // Answered as a client does, which lets the gateway end the connection at once.
        if (!this.socket.destroyed) this.socket.write(clientFrame(0x8, payload.subarray(0, 2)))
      }
    }
  }
}

/**
 * A session whose chat.history answer is about 5.5 MB: 55 notes of 100 kB
 * (each under chat.history's 128 KiB per message, 6 MiB in all).
 */
export const fillHistory = async (wsUrl: string, token: string, sessionKey: string): Promise<void> => {
  const { client } = await connect(wsUrl, token)
  const note = "n".repeat(100_000)
  for (let i = 0; i < 55; i++) {
    const injected = await client.request("chat.inject", { sessionKey, message: `${i} ${note}` })
    if (injected.error !== undefined) throw new Error(JSON.stringify(injected.error))
  }
  await client.close()
}

/** chat.history params that return all of fillHistory's session. */
export const wholeHistory = (sessionKey: string) => ({ sessionKey, limit: 1000, maxChars: 120_000 })

/** Opens a raw client and connects it (with `params`, connectParams of the token by default); resolves after hello-ok. */
export const connectRaw = async (port: number, params: (nonce: string) => unknown): Promise<{ readonly client: RawWsClient; readonly hello: Frame }> => {
  const client = await RawWsClient.open(port)
  const challenge = await client.waitFor((frame) => frame.type === "event" && frame.event === "connect.challenge")
  const id = client.request("connect", params(String(at(challenge.payload, "nonce"))))
  const hello = await client.waitFor((frame) => frame.type === "res" && frame.id === id)
  if (hello.ok !== true) throw new Error(`connect refused: ${JSON.stringify(hello.error)}`)
  return { client, hello }
}

/** A shared-token operator connection on a raw client. */
export const connectRawOperator = (port: number, token: string) => connectRaw(port, () => connectParams(token))
