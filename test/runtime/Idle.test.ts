/**
 * Idle means idle: a gateway that nobody talks to does not wake up. Its main
 * thread's context switches (/proc/<pid>/status) are counted over a quiet
 * second: each timer or poll that fires is one. The tick interval is set to
 * 20 ms, so a tick timer running without clients would show as about 50.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { WsClient, connectParams } from "../gateway/ws/WsClient.ts"
import { freePort, start, waitFor } from "../support/Cli.ts"
import { startFakeAnthropic } from "../support/FakeAnthropic.ts"

let home: string
beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-idle-"))
})
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true })
})

/** Voluntary plus involuntary context switches of the process's main thread so far. */
const switches = async (pid: number): Promise<number> => {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8")
  const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN)
  return count("voluntary_ctxt_switches") + count("nonvoluntary_ctxt_switches")
}

const quietSecond = async (pid: number): Promise<number> => {
  const before = await switches(pid)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  return (await switches(pid)) - before
}

describe.runIf(process.platform === "linux")("an idle gateway", () => {
  it("runs no timer: no ticks or health broadcasts without clients, and none after the last one leaves", async () => {
    const port = await freePort()
    const token = "idle-token"
    const gateway = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: token, BEAMCLAW_TICK_INTERVAL_MS: "20" })
    const pid = gateway.child.pid ?? 0
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200, "the gateway to be ready")
      // What start-up leaves behind (a GC, the last log writes) settles first.
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(await quietSecond(pid)).toBeLessThan(10)

      // A connected client gets its ticks...
      const client = await WsClient.open(`ws://127.0.0.1:${port}`)
      await client.challenge()
      await client.request("connect", connectParams(token), "connect-1")
      await client.waitFor((frame) => frame.event === "tick")
      expect(await quietSecond(pid)).toBeGreaterThan(20)
      // ...and once it leaves, the gateway is quiet again.
      await client.close()
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(await quietSecond(pid)).toBeLessThan(10)
    } finally {
      gateway.child.kill("SIGTERM")
      await gateway.result
    }
  })

  it("goes quiet again after work: sessions passivated, transcripts closed, nothing left polling", async () => {
    const fake = await startFakeAnthropic()
    const port = await freePort()
    const token = "idle-token"
    await fs.writeFile(path.join(home, "beamclaw.yaml"), `session:\n  idle:\n    passivateAfterSeconds: 1\nmodels:\n  providers:\n    anthropic:\n      baseUrl: ${fake.url}\n      apiKey: sk-test\n`)
    const gateway = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: token })
    const pid = gateway.child.pid ?? 0
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200, "the gateway to be ready")
      for (const user of ["ann", "bob", undefined]) {
        const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "beamclaw", ...(user === undefined ? {} : { user }), messages: [{ role: "user", content: "hello" }] })
        })
        expect(response.status).toBe(200)
      }
      // Sessions passivate after 1 s, open transcripts close after 10 s idle, the heap is looked at 5 s after the last turn.
      await new Promise((resolve) => setTimeout(resolve, 11_500))
      expect(await quietSecond(pid)).toBeLessThan(10)
    } finally {
      gateway.child.kill("SIGTERM")
      await gateway.result
      await fake.close()
    }
  }, 30_000)
})
