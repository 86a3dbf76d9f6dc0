import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as Transcript from "../../src/session/Transcript.ts"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../support/FakeAnthropic.ts"
import { freePort, run, start, waitFor } from "../support/Cli.ts"

let home: string
let fake: FakeAnthropicHandle
let env: Record<string, string>

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-cli-"))
  fake = await startFakeAnthropic()
  env = { BEAMCLAW_HOME: home, ANTHROPIC_BASE_URL: fake.url, ANTHROPIC_API_KEY: "sk-test" }
})
afterEach(async () => {
  await fake.close()
  await fs.rm(home, { recursive: true, force: true })
})

const sessionsDir = () => path.join(home, "agents", "main", "sessions")
const readIndex = async () => JSON.parse(await fs.readFile(path.join(sessionsDir(), "sessions.json"), "utf8")) as Record<string, { sessionId: string }>
const mainTranscript = async () => {
  const index = await readIndex()
  const sessionId = index["agent:main:main"]?.sessionId ?? ""
  return { file: path.join(sessionsDir(), `${sessionId}.jsonl`), sessionId }
}
const roles = (text: string) => Transcript.parse(text).entries.map((e) => e.type === "message" ? e.message.role : e.type)

describe("beamclaw agent", () => {
  it("prints the streamed answer and the transcript holds the turn", async () => {
    const result = await run(["agent", "--message", "hi"], env)
    expect(result.stderr).not.toContain("ERROR")
    expect(result.code).toBe(0)
    expect(result.stdout).toBe("echo: hi\n")
    const { file } = await mainTranscript()
    const text = await fs.readFile(file, "utf8")
    expect(roles(text)).toEqual(["user", "assistant"])
    expect(Transcript.parse(text).header?.key).toBe("agent:main:main")
  })

  it("prints JSON with --json and keeps history across invocations", async () => {
    await run(["agent", "-m", "first"], env)
    const result = await run(["agent", "--message", "second", "--json"], env)
    expect(result.code).toBe(0)
    const output = JSON.parse(result.stdout) as { text: string; sessionKey: string; usage: { totalTokens: number } }
    expect(output.text).toBe("echo: second")
    expect(output.sessionKey).toBe("agent:main:main")
    expect(output.usage.totalTokens).toBeGreaterThan(0)
    expect(JSON.stringify(fake.requests.at(-1)?.body?.messages)).toContain("echo: first")
  })

  it("says clearly what is missing when no API key is set", async () => {
    const result = await run(["agent", "--message", "hi"], { BEAMCLAW_HOME: home, ANTHROPIC_BASE_URL: fake.url })
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("No API key for provider \"anthropic\"")
    expect(result.stderr).toContain("ANTHROPIC_API_KEY")
  })

  it("rejects an invalid session key without touching the disk", async () => {
    const result = await run(["agent", "--message", "hi", "--session", "agent:main:../../etc"], env)
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain("invalid session key")
    expect(fake.requests).toHaveLength(0)
    await expect(fs.access(sessionsDir())).rejects.toThrow()
    await expect(fs.access(path.join(home, "..", "..", "etc.jsonl"))).rejects.toThrow()
  })

  it("answers again after kill -9 mid-stream, loading the transcript repaired", async () => {
    await run(["agent", "-m", "before the crash"], env)
    fake.push({ kind: "message", content: [{ type: "text", text: Array.from({ length: 200 }, (_, i) => `word${i}`).join(" ") }], delayMs: 30 })
    const streaming = start(["agent", "-m", "tell me a long story"], env)
    await waitFor(() => streaming.output().stdout.includes("word3"), "streamed text")
    streaming.child.kill("SIGKILL")
    const killed = await streaming.result
    expect(killed.signal).toBe("SIGKILL")
    const { file } = await mainTranscript()
    // A crash inside a write leaves half a line; make sure one is there.
    await fs.appendFile(file, `{"type":"message","id":"deadbeef","parentId":null,"timestamp":"2026-11-25T00:00:00.000Z","message":{"role":"assi`)

    const after = await run(["agent", "-m", "are you still there?"], env)
    expect(after.code).toBe(0)
    expect(after.stdout).toContain("echo: ")
    expect(after.stdout).toContain("are you still there?")
    expect(after.stderr).toContain("repaired transcript")
    const text = await fs.readFile(file, "utf8")
    expect(text.endsWith("\n")).toBe(true)
    const parsed = Transcript.parse(text)
    expect(parsed.badLines).toEqual([])
    expect(parsed.tornTail).toBe(false)
    expect(text).toContain("tell me a long story")
  })

  it("loads a transcript with a corrupt line, keeps the original and answers", async () => {
    await run(["agent", "-m", "one"], env)
    const { file } = await mainTranscript()
    await fs.appendFile(file, "this line is not json\n")
    const result = await run(["agent", "-m", "two"], env)
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("echo: two")
    expect(result.stderr).toContain("line 4: not JSON")
    const names = await fs.readdir(sessionsDir())
    const backup = names.find((n) => n.includes(".jsonl.corrupt-"))
    expect(backup).toBeDefined()
    expect(await fs.readFile(path.join(sessionsDir(), backup ?? ""), "utf8")).toContain("this line is not json")
    expect(roles(await fs.readFile(file, "utf8"))).toEqual(["user", "assistant", "user", "assistant"])
  })
})

describe("one writer per state directory", () => {
  it("refuses a second command while one is running, and loses nothing", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "a slow answer with quite a few words in it" }], delayMs: 60 })
    const first = start(["agent", "--session", "one", "-m", "first"], env)
    await waitFor(() => first.output().stdout.length > 0, "the first answer to start")
    const second = await run(["agent", "--session", "two", "-m", "second"], env)
    expect(second.code).not.toBe(0)
    expect(second.stderr).toContain("another beamclaw command (`agent`")
    expect((await first.result).code).toBe(0)
    const retry = await run(["agent", "--session", "two", "-m", "second"], env)
    expect(retry.code).toBe(0)
    const index = await readIndex()
    expect(Object.keys(index).sort()).toEqual(["agent:main:one", "agent:main:two"])
    const list = await run(["sessions", "list", "--agent", "../escape"], env)
    expect(list.code).not.toBe(0)
    expect(list.stderr).toContain("unknown agent")
  })
})

describe("beamclaw config", () => {
  it("refuses to boot on an invalid config, listing every problem", async () => {
    await fs.writeFile(path.join(home, "beamclaw.yaml"), "gateway:\n  port: abc\n  colour: blue\nsession:\n  dmScope: everyone\n")
    const result = await run(["agent", "-m", "hi"], env)
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain(`gateway.port: expected an integer 1..65535, got "abc"`)
    expect(result.stderr).toContain("gateway.colour: unknown key")
    expect(result.stderr).toContain("session.dmScope")
    expect(fake.requests).toHaveLength(0)
    const validate = await run(["config", "validate", "--json"], env)
    expect(validate.code).not.toBe(0)
    expect((JSON.parse(validate.stdout) as { issues: Array<unknown> }).issues).toHaveLength(3)
  })

  it("validate also refuses what the gateway would not start on (auth none off loopback)", async () => {
    await fs.writeFile(path.join(home, "beamclaw.yaml"), "gateway:\n  bind: lan\n  auth:\n    mode: none\n")
    const validate = await run(["config", "validate"], env)
    expect(validate.code).toBe(1)
    expect(validate.stderr).toContain("the gateway would not start: gateway.auth.mode is none, which is only allowed when the gateway binds to loopback")
    const json = await run(["config", "validate", "--json"], env)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, issues: [{ path: "gateway" }] })
  })

  it("reports broken YAML with its line and column", async () => {
    await fs.writeFile(path.join(home, "beamclaw.yaml"), "gateway:\n  port: [1\nagents: {}\n")
    const result = await run(["config", "validate"], env)
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/line \d+, column \d+/)
  })

  it("gets values with secrets redacted", async () => {
    await fs.writeFile(path.join(home, "beamclaw.yaml"), "gateway:\n  port: 19999\n  auth:\n    token: ${MY_TOKEN}\n")
    const port = await run(["config", "get", "gateway.port"], { ...env, MY_TOKEN: "hunter2" })
    expect(port.stdout.trim()).toBe("19999")
    const all = await run(["config", "get", "--json"], { ...env, MY_TOKEN: "hunter2" })
    expect(all.stdout).not.toContain("hunter2")
    expect(all.stdout).toContain("<redacted>")
    const validate = await run(["config", "validate"], { ...env, MY_TOKEN: "hunter2" })
    expect(validate.code).toBe(0)
  })
})

describe("beamclaw gateway", () => {
  it("starts with no arguments and no config, answering /health and /ready", async () => {
    const port = await freePort()
    const gateway = start([], { ...env, BEAMCLAW_PORT: String(port) })
    try {
      let health: Response | undefined
      await waitFor(async () => {
        health = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined)
        return health !== undefined
      }, "the gateway to listen")
      expect(health?.status).toBe(200)
      expect(await health?.json()).toEqual({ ok: true, status: "live" })
      // Live first; ready once the sessions and routes are up, a few ms later.
      let ready: Response | undefined
      await waitFor(async () => {
        ready = await fetch(`http://127.0.0.1:${port}/ready`)
        return ready.status === 200
      }, "the gateway to be ready")
      expect((await ready?.json() as { ready: boolean }).ready).toBe(true)
      // With a gateway running, `agent` goes through it (its generated token, its RPC)...
      const viaGateway = await run(["agent", "-m", "hi", "--json"], env)
      expect(viaGateway.stderr).toBe("")
      expect(JSON.parse(viaGateway.stdout)).toMatchObject({ text: "echo: hi", sessionKey: "agent:main:main" })
      // ...and so do `sessions show` and `sessions reset`: the gateway stays the one writer.
      const shown = await run(["sessions", "show", "main"], env)
      expect(shown.stdout).toContain("user: hi")
      expect(shown.stdout).toContain("assistant: echo: hi")
      const reset = await run(["sessions", "reset", "main", "--json"], env)
      expect(reset.code).toBe(0)
      expect(JSON.parse(reset.stdout)).toMatchObject({ key: "agent:main:main" })
      const after = await run(["sessions", "show", "main"], env)
      expect(after.stdout).toContain("has no messages")
    } finally {
      gateway.child.kill("SIGTERM")
    }
    const exit = await gateway.result
    expect(exit.stderr).not.toContain("ERROR")
    await expect(fs.access(path.join(home, "gateway.lease.json"))).rejects.toThrow()
  })

  it("says clearly when its port is taken", async () => {
    const net = await import("node:net")
    const blocker = net.createServer()
    const port = await freePort()
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve))
    try {
      const result = await run(["--port", String(port)], { BEAMCLAW_HOME: home })
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`)
    } finally {
      blocker.close()
    }
  })

  it("lets --port win over BEAMCLAW_PORT", async () => {
    const [flagPort, envPort] = [await freePort(), await freePort()]
    const gateway = start(["gateway", "--port", String(flagPort)], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(envPort) })
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${flagPort}/health`).catch(() => undefined))?.ok === true, "the flag port")
      await expect(fetch(`http://127.0.0.1:${envPort}/health`)).rejects.toThrow()
    } finally {
      gateway.child.kill("SIGTERM")
      await gateway.result
    }
  })
})

describe("config hot reload", () => {
  it("moves the listener when gateway.port is edited, and ignores an invalid edit", async () => {
    const [first, second] = [await freePort(), await freePort()]
    const configFile = path.join(home, "beamclaw.yaml")
    await fs.writeFile(configFile, `gateway:\n  port: ${first}\n`)
    const gateway = start([], { BEAMCLAW_HOME: home })
    const healthy = async (port: number) => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok === true
    try {
      await waitFor(() => healthy(first), "the first port")
      await fs.writeFile(configFile, `gateway:\n  port: not-a-port\n`)
      await waitFor(() => gateway.output().stdout.includes("config reload skipped"), "the invalid edit to be rejected")
      expect(await healthy(first)).toBe(true)
      await fs.writeFile(configFile, `gateway:\n  port: ${second}\n`)
      await waitFor(() => healthy(second), "the second port")
      expect(await healthy(first)).toBe(false)
      expect(gateway.child.exitCode).toBeNull()
    } finally {
      gateway.child.kill("SIGTERM")
      await gateway.result
    }
  })
})

describe("beamclaw sessions", () => {
  it("lists, shows and resets sessions", async () => {
    await run(["agent", "-m", "hello"], env)
    const list = await run(["sessions", "list", "--json"], env)
    const rows = JSON.parse(list.stdout) as Array<{ key: string; turnCount: number }>
    expect(rows.map((r) => r.key)).toEqual(["agent:main:main"])
    const show = await run(["sessions", "show", "main"], env)
    expect(show.stdout).toContain("user: hello")
    expect(show.stdout).toContain("assistant: echo: hello")
    const reset = await run(["sessions", "reset", "main"], env)
    expect(reset.code).toBe(0)
    const after = await run(["sessions", "show", "main"], env)
    expect(after.stdout).toContain("has no messages")
  })

  /** Sessions as a gateway that ran for a while leaves them: an index and transcripts, `ageDays` old. */
  const seedSessions = async (seeds: ReadonlyArray<{ readonly key: string; readonly ageDays: number }>) => {
    await fs.mkdir(sessionsDir(), { recursive: true })
    const index: Record<string, unknown> = {}
    for (const seed of seeds) {
      const at = Date.now() - seed.ageDays * 86_400_000
      const sessionId = `seed-${seed.key.split(":").slice(2).join("-")}`
      index[seed.key] = { sessionId, agentId: "main", updatedAt: at, sessionStartedAt: at, inputTokens: 0, outputTokens: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0, contextTokens: 0, compactionCount: 0, turnCount: 1 }
      const header = { type: "session", version: 3, id: sessionId, timestamp: new Date(at).toISOString(), cwd: "", key: seed.key, agentId: "main" }
      await fs.writeFile(path.join(sessionsDir(), `${sessionId}.jsonl`), `${JSON.stringify(header)}\n`)
    }
    await fs.writeFile(path.join(sessionsDir(), "sessions.json"), JSON.stringify(index))
  }
  const seeds = [
    { key: "agent:main:main", ageDays: 90 },
    { key: "agent:main:openai-user:alice", ageDays: 45 },
    { key: "agent:main:openai:0b7c1f52", ageDays: 40 },
    { key: "agent:main:openai-user:bob", ageDays: 1 }
  ]

  it("cleanup runs session maintenance in-process: a dry run says what would go, then it goes; bad flags are refused", async () => {
    await seedSessions(seeds)
    const dry = await run(["sessions", "cleanup", "--dry-run", "--json"], env)
    expect(dry.stderr).toBe("")
    const [summary] = JSON.parse(dry.stdout) as Array<{ dryRun: boolean; pruned: number; actions: Array<{ key: string; transcript: string }> }>
    expect(summary).toMatchObject({ dryRun: true, pruned: 2 })
    expect(summary?.actions).toEqual([
      { key: "agent:main:openai-user:alice", reason: "age", transcript: "archive" },
      { key: "agent:main:openai:0b7c1f52", reason: "age", transcript: "erase" }
    ])
    expect(Object.keys(await readIndex()).length).toBe(4)

    const applied = await run(["sessions", "cleanup"], env)
    expect(applied.code).toBe(0)
    expect(applied.stdout).toContain("agent main (enforce): 4 session(s); removed 2 (2 idle past pruneAfter)")
    expect(applied.stdout).toContain("agent:main:openai-user:alice  age  transcript archived")
    expect(applied.stdout).toContain("agent:main:openai:0b7c1f52  age  transcript erased")
    expect(Object.keys(await readIndex()).sort()).toEqual(["agent:main:main", "agent:main:openai-user:bob"])
    const names = await fs.readdir(sessionsDir())
    expect(names.some((name) => name.startsWith("seed-openai-user-alice.jsonl.deleted."))).toBe(true)
    expect(names.some((name) => name.startsWith("seed-openai-0b7c1f52"))).toBe(false)

    const both = await run(["sessions", "cleanup", "--agent", "main", "--all-agents"], env)
    expect(both.code).toBe(1)
    expect(both.stderr).toContain("beamclaw: give --agent or --all-agents, not both")
    const unknown = await run(["sessions", "cleanup", "--agent", "nobody"], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("unknown agent \"nobody\"")
  })

  it("cleanup goes through a running gateway (its typed RPC), which stays the one writer", async () => {
    await seedSessions(seeds)
    await fs.writeFile(path.join(home, "beamclaw.yaml"), "session:\n  maintenance:\n    mode: warn\n")
    const port = await freePort()
    const gateway = start([], { ...env, BEAMCLAW_PORT: String(port) })
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200, "the gateway to be ready")
      const warn = await run(["sessions", "cleanup", "--json"], env)
      expect(warn.stderr).toBe("")
      expect(JSON.parse(warn.stdout)).toMatchObject([{ mode: "warn", dryRun: true, pruned: 2 }])
      const enforced = await run(["sessions", "cleanup", "--enforce", "--active-key", "openai-user:alice"], env)
      expect(enforced.code).toBe(0)
      expect(enforced.stdout).toContain("agent main (warn): 4 session(s); removed 1 (1 idle past pruneAfter)")
      const listed = await run(["sessions", "list", "--json"], env)
      expect((JSON.parse(listed.stdout) as Array<{ key: string }>).map((row) => row.key).sort()).toEqual(["agent:main:main", "agent:main:openai-user:alice", "agent:main:openai-user:bob"])
    } finally {
      gateway.child.kill("SIGTERM")
    }
    expect((await gateway.result).code).toBe(0)
  })

  it("a key naming an agent that does not exist is refused in-process, as through the gateway", async () => {
    const reset = await run(["sessions", "reset", "agent:other:main"], env)
    expect(reset.code).toBe(1)
    expect(reset.stderr).toContain("unknown agent \"other\"")
    await expect(fs.access(path.join(home, "agents", "other"))).rejects.toThrow()
  })

  it("goes through a gateway in auth mode none (no credential), and one in password mode (its password)", async () => {
    for (const auth of ["  auth:\n    mode: none\n", "  auth:\n    mode: password\n    password: pw-123\n    token: stale-token\n"]) {
      await fs.writeFile(path.join(home, "beamclaw.yaml"), `gateway:\n${auth}`)
      const port = await freePort()
      const gateway = start([], { ...env, BEAMCLAW_PORT: String(port) })
      try {
        await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200, "the gateway to be ready")
        const shown = await run(["sessions", "show", "main"], env)
        expect(shown.stderr).toBe("")
        expect(shown.code).toBe(0)
      } finally {
        gateway.child.kill("SIGTERM")
        await gateway.result
      }
    }
  })

  it("says where the gateway was expected and what to do when the one holding the state directory does not answer", async () => {
    const port = await freePort()
    // This test process stands for a live gateway that holds the lease and does not answer.
    await fs.writeFile(path.join(home, "gateway.lease.json"), JSON.stringify({ pid: process.pid, holder: "gateway", host: "127.0.0.1", port, startedAt: new Date().toISOString() }))
    await fs.writeFile(path.join(home, "gateway.token"), "some-token")
    const shown = await run(["sessions", "show", "main"], env)
    expect(shown.code).toBe(1)
    expect(shown.stderr).toContain(`the gateway that holds this state directory (pid ${process.pid}) did not answer at ws://127.0.0.1:${port}/rpc`)
    expect(shown.stderr).toContain(`kill ${process.pid}`)
  })
})
