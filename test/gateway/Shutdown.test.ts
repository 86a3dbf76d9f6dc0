import * as fs from "node:fs/promises"
import * as net from "node:net"
import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as Transcript from "../../src/session/Transcript.ts"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../support/FakeAnthropic.ts"
import { startGateway } from "../support/Gateway.ts"
import { connect } from "./ws/WsClient.ts"

let fake: FakeAnthropicHandle
beforeEach(async () => {
  fake = await startFakeAnthropic()
})
afterEach(async () => {
  await fake.close()
})

describe("graceful shutdown", () => {
  it("on SIGTERM lets a running turn finish, persists it and exits 0", async () => {
    const words = Array.from({ length: 12 }, (_, i) => `w${i}`).join(" ")
    fake.push({ kind: "message", content: [{ type: "text", text: words }], delayMs: 60 })
    const gateway = await startGateway({ anthropicUrl: fake.url })
    const home = gateway.home
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "beamclaw", user: "shutdown", stream: true, messages: [{ role: "user", content: "long answer please" }] })
    })
    const reader = response.body?.getReader()
    const first = await reader?.read()
    expect(new TextDecoder().decode(first?.value)).toContain("data:")
    const stopping = gateway.stop({ keepHome: true })
    let body = ""
    while (true) {
      const chunk = await reader?.read()
      if (chunk === undefined || chunk.done) break
      body += new TextDecoder().decode(chunk.value)
    }
    expect(body).toContain("w11")
    expect(body).toContain("[DONE]")
    const result = await stopping
    expect(result.code).toBe(0)
    expect(result.stdout + result.stderr).not.toContain("ERROR")
    try {
      const sessionsDir = path.join(home, "agents", "main", "sessions")
      const index = JSON.parse(await fs.readFile(path.join(sessionsDir, "sessions.json"), "utf8")) as Record<string, { sessionId: string; turnCount: number }>
      const [entry] = Object.values(index)
      expect(entry?.turnCount).toBe(1)
      const transcript = Transcript.parse(await fs.readFile(path.join(sessionsDir, `${entry?.sessionId}.jsonl`), "utf8"))
      const last = transcript.entries.at(-1)
      expect(last?.type === "message" && last.message.role === "assistant" && last.message.stopReason).toBe("stop")
    } finally {
      await fs.rm(home, { recursive: true, force: true })
    }
  })

  it("lets a WebSocket chat.send run finish during shutdown, though its client is gone", async () => {
    const words = Array.from({ length: 10 }, (_, i) => `v${i}`).join(" ")
    fake.push({ kind: "message", content: [{ type: "text", text: words }], delayMs: 80 })
    const gateway = await startGateway({ anthropicUrl: fake.url })
    const { client } = await connect(gateway.wsUrl, gateway.token)
    const ack = await client.request("chat.send", { sessionKey: "main", message: "take your time", idempotencyKey: "shutdown-run" })
    expect(ack.ok).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const result = await gateway.stop({ keepHome: true })
    expect(result.code).toBe(0)
    try {
      const sessionsDir = path.join(gateway.home, "agents", "main", "sessions")
      const index = JSON.parse(await fs.readFile(path.join(sessionsDir, "sessions.json"), "utf8")) as Record<string, { sessionId: string }>
      const transcript = Transcript.parse(await fs.readFile(path.join(sessionsDir, `${index["agent:main:main"]?.sessionId}.jsonl`), "utf8"))
      const last = transcript.entries.at(-1)
      expect(last?.type === "message" && last.message.role === "assistant" && last.message.stopReason).toBe("stop")
      expect(JSON.stringify(last)).toContain("v9")
    } finally {
      await fs.rm(gateway.home, { recursive: true, force: true })
    }
  })

  it("drops WebSocket clients that never answer the close handshake, so shutdown does not wait for them", async () => {
    const gateway = await startGateway({ anthropicUrl: fake.url })
    // Raw sockets that upgrade and then never read or answer anything: one that never connects (no hello), and one
    // that completes connect (a ws client would answer the close frame; these cannot).
    const upgrade = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(gateway.port, "127.0.0.1", () => {
          socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
        })
        socket.once("data", (chunk) => chunk.toString("latin1").startsWith("HTTP/1.1 101") ? resolve(socket) : reject(new Error(chunk.toString("latin1"))))
        socket.once("error", reject)
      })
    const silent = await upgrade()
    silent.pause()
    const authenticated = await connect(gateway.wsUrl, gateway.token)
    // The ws client would answer the close frame: take its socket away from it.
    const raw = await upgrade()
    raw.pause()
    const started = Date.now()
    const result = await gateway.stop()
    expect(result.code).toBe(0)
    expect(Date.now() - started).toBeLessThan(4000)
    silent.destroy()
    raw.destroy()
    await authenticated.client.close()
  }, 20_000)

  it("drops a socket whose handshake was refused once the close grace is over, even if it never answers the close", async () => {
    const gateway = await startGateway({ anthropicUrl: fake.url, env: { BEAMCLAW_HANDSHAKE_TIMEOUT_MS: "200" } })
    try {
      const socket = net.connect(gateway.port, "127.0.0.1", () => {
        socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
      })
      const started = Date.now()
      // Reads what comes (the challenge, then the close frame) and never answers.
      socket.on("data", () => {})
      await new Promise<void>((resolve) => socket.once("close", () => resolve()))
      // The handshake timeout (200 ms), then 1 s for a close answer that never comes; not the WebSocket library's 30 s.
      expect(Date.now() - started).toBeLessThan(4000)
    } finally {
      await gateway.stop()
    }
  }, 20_000)
})
