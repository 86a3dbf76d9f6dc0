/**
 * The pre-auth socket budget on a real gateway, with `ws` clients: at most N
 * sockets per client address that have not completed `connect`; the N+1th
 * upgrade gets HTTP 503 "Too many unauthenticated sockets" before any
 * WebSocket exists; a socket leaves the budget when it authenticates, closes,
 * or is closed by the handshake timeout. Loopback is not exempt (OpenClaw
 * does not exempt it either), and the default is OpenClaw's 32.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as net from "node:net"
import WebSocket from "ws"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import * as PreauthBudget from "../../../src/gateway/ws/PreauthBudget.ts"
import { connectParams } from "./WsClient.ts"

const BUDGET = 3
const HANDSHAKE_TIMEOUT_MS = 1500

let fake: FakeAnthropicHandle
let gateway: StartedGateway

beforeAll(async () => {
  fake = await startFakeAnthropic()
  gateway = await startGateway({
    anthropicUrl: fake.url,
    env: { BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP: String(BUDGET), BEAMCLAW_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_TIMEOUT_MS) }
  })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

interface Opened {
  readonly ws: WebSocket
  readonly frames: Array<unknown>
  /** The connect.challenge: the server accepted the socket and runs its handshake. */
  readonly challenged: Promise<void>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
}
type Attempt = { readonly opened: Opened } | { readonly refused: { readonly status: number; readonly body: string; readonly connection: string | undefined } }

/** One upgrade: the open socket, or the HTTP response that refused it. */
const attempt = (url: string, options: WebSocket.ClientOptions = {}): Promise<Attempt> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options })
    const frames: Array<unknown> = []
    let challenge: () => void = () => {}
    const challenged = new Promise<void>((done) => {
      challenge = done
    })
    ws.on("message", (data) => {
      const frame: unknown = JSON.parse(String(data))
      frames.push(frame)
      if (typeof frame === "object" && frame !== null && Reflect.get(frame, "event") === "connect.challenge") challenge()
    })
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on("close", (code, reason) => done({ code, reason: reason.toString() })))
    ws.once("open", () => resolve({ opened: { ws, frames, challenged, closed } }))
    ws.once("unexpected-response", (request, response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        body += chunk
      })
      response.on("end", () => {
        resolve({ refused: { status: response.statusCode ?? 0, body, connection: response.headers.connection } })
        request.destroy()
      })
    })
    ws.once("error", (error) => reject(error))
  })

const open = async (url = gateway.wsUrl, options: WebSocket.ClientOptions = {}): Promise<Opened> => {
  const result = await attempt(url, options)
  if (!("opened" in result)) throw new Error(`upgrade refused: ${JSON.stringify(result.refused)}`)
  await result.opened.challenged
  return result.opened
}

const assertRefused = async (url = gateway.wsUrl, options: WebSocket.ClientOptions = {}) => {
  const result = await attempt(url, options)
  if (!("refused" in result)) {
    result.opened.ws.terminate()
    assert.fail("the upgrade over budget was accepted")
  }
  assert.deepStrictEqual(result.refused, { status: 503, body: "Too many unauthenticated sockets", connection: "close" })
}

/** The server releases a closed socket's slot when its connection ends, a moment after the client sees the close. */
const openEventually = async (url = gateway.wsUrl, deadlineMs = 3000): Promise<Opened> => {
  const deadline = Date.now() + deadlineMs
  while (true) {
    const result = await attempt(url)
    if ("opened" in result) {
      await result.opened.challenged
      return result.opened
    }
    if (Date.now() > deadline) assert.fail(`still refused after ${deadlineMs} ms: ${JSON.stringify(result.refused)}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

const authenticate = (socket: Opened, token: string): Promise<unknown> =>
  new Promise((resolve, reject) => {
    socket.ws.on("message", (data) => {
      const frame: unknown = JSON.parse(String(data))
      if (typeof frame === "object" && frame !== null && Reflect.get(frame, "id") === "connect-1") {
        if (Reflect.get(frame, "ok") === true) resolve(frame)
        else reject(new Error(JSON.stringify(frame)))
      }
    })
    socket.ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params: connectParams(token) }))
  })

const closeAll = async (sockets: ReadonlyArray<Opened>) => {
  for (const socket of sockets) socket.ws.close()
  await Promise.all(sockets.map((socket) => socket.closed))
}

describe("pre-auth socket budget", () => {
  it("N unauthenticated sockets from one address fill it; the next upgrade gets 503 before any WebSocket; a close frees a slot", async () => {
    const sockets = [await open(), await open(), await open()]
    await assertRefused()
    await assertRefused()
    // A refused upgrade held no slot; closing one accepted socket frees exactly one.
    const [first, ...rest] = sockets
    if (first === undefined) throw new Error("no socket")
    first.ws.close()
    await first.closed
    const replacement = await openEventually()
    await assertRefused()
    await closeAll([...rest, replacement])
  })

  it("a socket that authenticates leaves the budget at once; authenticated sockets never count", async () => {
    const sockets = [await open(), await open(), await open()]
    await assertRefused()
    for (const socket of sockets) await authenticate(socket, gateway.token)
    // hello-ok is queued after the slot is released, so the next upgrade needs no retry.
    const fresh = [await open(), await open(), await open()]
    await assertRefused()
    await closeAll([...sockets, ...fresh])
  })

  it("a failed connect keeps the slot until the server closes the socket", async () => {
    const sockets = [await open(), await open(), await open()]
    const [first] = sockets
    if (first === undefined) throw new Error("no socket")
    await assertRefused()
    first.ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params: connectParams("wrong-token") }))
    assert.strictEqual((await first.closed).code, 1008)
    const replacement = await openEventually()
    await closeAll([...sockets.slice(1), replacement])
  })

  it("the handshake timeout closes idle sockets and frees their slots", async () => {
    const sockets = [await open(), await open(), await open()]
    await assertRefused()
    const started = Date.now()
    for (const socket of sockets) assert.deepStrictEqual(await socket.closed, { code: 1008, reason: "handshake timeout" })
    assert.isAtLeast(Date.now() - started, HANDSHAKE_TIMEOUT_MS - 500)
    const after = [await openEventually(), await open(), await open()]
    await closeAll(after)
  })

  it("an upgrade the WebSocket handshake refuses, or a socket dropped mid-connect, gives its slot back", async () => {
    // A bad Sec-WebSocket-Version passes the route (it takes a slot) and is refused by the handshake itself.
    const { port } = new URL(gateway.wsUrl)
    for (let i = 0; i < BUDGET + 2; i++) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), "127.0.0.1")
        let text = ""
        socket.on("data", (chunk) => {
          text += chunk.toString()
        })
        socket.on("close", () => resolve(text))
        socket.on("error", reject)
        socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${Buffer.alloc(16, i).toString("base64")}\r\nSec-WebSocket-Version: 99\r\n\r\n`)
      })
      assert.match(answer, /^HTTP\/1\.1 (400|426)/, answer)
    }
    // Clients that go away between sending connect and its answer.
    for (let i = 0; i < BUDGET + 2; i++) {
      const socket = await openEventually()
      socket.ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params: connectParams(gateway.token) }))
      socket.ws.terminate()
    }
    const sockets = [await openEventually(), await openEventually(), await openEventually()]
    await assertRefused()
    await closeAll(sockets)
  })

  it("is kept per client address: another loopback address has its own budget", async () => {
    const sockets = [await open(), await open(), await open()]
    await assertRefused()
    // Linux routes all of 127.0.0.0/8 to lo, so a client can bind 127.0.0.2 as its source.
    const elsewhere = await open(gateway.wsUrl, { localAddress: "127.0.0.2" })
    await closeAll([...sockets, elsewhere])
  })

  it("defaults to OpenClaw's 32 per address, and a budget that is not a positive whole number is named in the log and not used", async () => {
    const defaults = await startGateway({ anthropicUrl: fake.url, env: { BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP: "lots" } })
    try {
      const sockets: Array<Opened> = []
      for (let i = 0; i < 32; i++) sockets.push(await open(defaults.wsUrl))
      await assertRefused(defaults.wsUrl)
      await closeAll(sockets)
      const { stdout, stderr } = defaults.output()
      assert.include(stdout + stderr, 'BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP="lots" is not a positive whole number; using 32')
    } finally {
      await defaults.stop()
    }
  })
})

describe("PreauthBudget", () => {
  it("releases each slot once, keys IPv4-mapped and plain addresses alike, and drops empty entries", () => {
    const budget = PreauthBudget.make(2)
    const first = budget.acquire("::ffff:10.0.0.1")
    const second = budget.acquire("10.0.0.1")
    assert.isDefined(first)
    assert.isDefined(second)
    assert.isUndefined(budget.acquire("10.0.0.1"))
    first?.()
    first?.()
    assert.strictEqual(budget.held("10.0.0.1"), 1, "a second release of the same slot frees nothing")
    assert.isDefined(budget.acquire("10.0.0.1"))
    assert.isUndefined(budget.acquire("10.0.0.1"))
    // An unknown address is capped in its own bucket rather than let through.
    assert.isDefined(budget.acquire(""))
    assert.isDefined(budget.acquire(""))
    assert.isUndefined(budget.acquire(""))
  })
})
