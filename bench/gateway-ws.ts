/**
 * 1,000 WebSocket clients streaming at once (issue #3, gateway bench 4).
 *
 * The fake (bench/gateway-ws-fake.ts, its own process) streams N one-word
 * text deltas per request, `delayMs` apart, each word being the fake's clock
 * at the write. Per-event latency = the client's clock at receipt − that
 * stamp (same machine, performance.timeOrigin + performance.now() in both).
 *
 * Baseline: C concurrent streaming POST /v1/messages straight to the fake
 * over a keep-alive agent (warmed first, so no connects are timed).
 * Ours: C clients of the `ws` package on `node <dist>/main.js`, each:
 * connect.challenge → connect (token, client id "cli", so no presence
 * broadcast) → hello-ok, then all send `chat.send` on their own session at
 * once. A client times, for its own runId: `agent` events of the assistant
 * stream (one per word), `chat` deltas (throttled to one per 150 ms per run;
 * timed against the newest word they carry) and the `chat` final (against
 * the last word). Everything else it receives is counted, not parsed
 * (OpenClaw broadcasts chat and agent events to every operator connection).
 * Errors: failed connects, error responses, error/aborted chat events,
 * closes before the final, missing finals at the deadline, finals without
 * all N words.
 *
 *   node bench/gateway-ws.ts [clients=1000] [words=10] [delayMs=50] [warmupClients=20] [deadlineSeconds=45] [fanout=scoped|all]
 * fanout "scoped" (default): clients declare caps ["session-scoped-events"] and
 * subscribe to their own session, as OpenClaw's newer clients do; "all": no
 * caps, so every client receives every run's events (C² frames).
 * A warm-up round where the first `warmupClients` send (JIT, the SDK's lazy
 * load) comes before the measured round where all do; a round ends when every
 * sender has its final, or at the deadline.
 * BENCH_CPU_PROF=<dir> runs the gateway under --cpu-prof. The gateway's run lane
 * (agents.defaults.maxConcurrent) is as large as the client count, so all
 * stream at once; BENCH_MAX_CONCURRENT=<n> sets it (say, OpenClaw's default).
 * Needs about 3 file descriptors per client across the processes (ulimit -n).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import WebSocket from "ws"
import { connectParams } from "../test/gateway/ws/WsClient.ts"
import { nodeBin, repoRoot, table } from "./common.ts"
import { cpuMs, distDir, percentile, startGateway } from "./gateway-common.ts"

const now = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface WsOptions {
  readonly clients: number
  readonly words: number
  readonly delayMs: number
  /** Clients in the warm-up round (JIT, the SDK's lazy load) before the measured round of all clients. */
  readonly warmupClients: number
  /** Per round. */
  readonly deadlineMs: number
  /**
   * "scoped": clients connect with caps ["session-scoped-events"] and subscribe
   * to their own session (sessions.messages.subscribe), so each receives its own
   * run's events; "all": OpenClaw's default, every client receives every run.
   */
  readonly fanout: "scoped" | "all"
}

export interface Latencies {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

const summarize = (values: ReadonlyArray<number>): Latencies => ({
  count: values.length,
  p50: percentile(values, 50),
  p90: percentile(values, 90),
  p99: percentile(values, 99),
  max: values.reduce((a, b) => Math.max(a, b), -Infinity)
})

export interface BaselineResult {
  readonly deltas: Latencies
  readonly errors: number
  readonly wallMs: number
  readonly fakeCpuMs: number
  readonly clientCpuMs: number
}

export interface GatewayRound {
  readonly agent: Latencies
  readonly chatDeltas: Latencies
  readonly finals: Latencies
  /** Ack of chat.send, from send to response. */
  readonly acks: Latencies
  /** chat.send to the client's first word. */
  readonly firstWord: Latencies
  readonly errors: Record<string, number>
  readonly framesPerClient: number
  readonly megabytesPerClient: number
  readonly wallMs: number
  readonly gatewayCpuMs: number
  readonly fakeCpuMs: number
  readonly clientCpuMs: number
}

export interface WsResult {
  readonly options: WsOptions
  readonly baseline: BaselineResult
  readonly connect: Latencies
  readonly connectErrors: number
  readonly round: GatewayRound
  readonly sampleErrors: ReadonlyArray<string>
}

// ---------------------------------------------------------------------------
// The fake

interface Fake {
  readonly url: string
  readonly pid: number
  readonly counts: () => Promise<unknown>
  readonly stop: () => Promise<void>
}

const startWsFake = async (words: number, delayMs: number): Promise<Fake> => {
  const child: ChildProcess = spawn(nodeBin, [path.join(repoRoot, "bench", "gateway-ws-fake.ts"), String(words), String(delayMs)], { stdio: ["pipe", "pipe", "inherit"] })
  const lines = readline.createInterface({ input: child.stdout! })
  const waiting: Array<(line: string) => void> = []
  lines.on("line", (line) => waiting.shift()?.(line))
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve))
  const url = await nextLine()
  return {
    url,
    pid: child.pid ?? 0,
    counts: async () => {
      const answer = nextLine()
      child.stdin!.write("count\n")
      return JSON.parse(await answer)
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
        child.once("exit", () => {
          clearTimeout(timer)
          resolve()
        })
        child.stdin!.end()
      })
  }
}

const STAMP = /t(\d+\.\d+) /g

/** The newest stamp in a text of stamped words, and how many words it has. */
const lastStamp = (text: string): { readonly stamp: number; readonly words: number } => {
  let stamp = NaN
  let words = 0
  for (const match of text.matchAll(STAMP)) {
    stamp = Number(match[1])
    words++
  }
  return { stamp, words }
}

// ---------------------------------------------------------------------------
// Baseline: SSE straight from the fake

// About the size of the gateway's request (its system prompt is ~7 KB).
const baselineBody = JSON.stringify({
  model: "claude-bench",
  max_tokens: 4096,
  stream: true,
  system: "x".repeat(7000),
  messages: [{ role: "user", content: "hello" }]
})

const streamFromFake = (agent: http.Agent, url: string, latencies: Array<number> | undefined): Promise<boolean> =>
  new Promise((resolve) => {
    const target = new URL("/v1/messages", url)
    const request = http.request({
      agent,
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(baselineBody)), "x-bench-baseline": "1", "x-api-key": "sk-bench" }
    }, (response) => {
      let buffered = ""
      let stopped = false
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        const at = now()
        buffered += chunk
        const events = buffered.split("\n\n")
        buffered = events.pop() ?? ""
        for (const event of events) {
          if (event.startsWith("event: content_block_delta")) {
            const { stamp } = lastStamp(event)
            latencies?.push(at - stamp)
          } else if (event.startsWith("event: message_stop")) {
            stopped = true
          }
        }
      })
      response.on("end", () => resolve(response.statusCode === 200 && stopped))
      response.on("error", () => resolve(false))
    })
    request.on("error", () => resolve(false))
    request.end(baselineBody)
  })

const runBaseline = async (fake: Fake, options: WsOptions, log: (line: string) => void): Promise<BaselineResult> => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.clients, maxFreeSockets: options.clients, keepAliveMsecs: 60_000 })
  const all = (latencies: Array<number> | undefined) => Promise.all(Array.from({ length: options.clients }, () => streamFromFake(agent, fake.url, latencies)))
  // Warm-up round: opens the keep-alive sockets so the measured round times no connects.
  await all(undefined)
  const latencies: Array<number> = []
  const fakeCpu = await cpuMs(fake.pid)
  const clientCpu = process.cpuUsage()
  const started = performance.now()
  const results = await all(latencies)
  const wallMs = performance.now() - started
  const clientUsage = process.cpuUsage(clientCpu)
  const fakeCpuMs = (await cpuMs(fake.pid)) - fakeCpu
  agent.destroy()
  const errors = results.filter((ok) => !ok).length + Math.max(0, options.clients * options.words - latencies.length)
  log(`baseline: ${latencies.length} deltas in ${wallMs.toFixed(0)} ms, ${errors} errors`)
  return { deltas: summarize(latencies), errors, wallMs, fakeCpuMs, clientCpuMs: (clientUsage.user + clientUsage.system) / 1000 }
}

// ---------------------------------------------------------------------------
// Ours: WebSocket clients on the gateway

const RES_MARK = Buffer.from(`"type":"res"`)

interface Round {
  readonly runIdOf: (client: number) => string
  readonly agent: Array<number>
  readonly chatDeltas: Array<number>
  readonly finals: Array<number>
  readonly acks: Array<number>
  readonly errors: Record<string, number>
  readonly done: Set<number>
  readonly sentAt: Map<number, number>
  /** chat.send → this client's first word: includes any wait for a slot in the gateway's run lane. */
  readonly firstWord: Array<number>
}

const sessionKeyOf = (index: number) => `bench-ws-${index}`

class Client {
  readonly ws: WebSocket
  frames = 0
  bytes = 0
  connected = false
  round: Round | undefined
  private runIdBuffer: Buffer = Buffer.alloc(0)
  private sendId = ""
  private sawWord = false
  private onConnected: ((ok: boolean) => void) | undefined
  readonly index: number
  readonly token: string
  readonly words: number
  readonly sample: (message: string) => void

  readonly scoped: boolean

  constructor(index: number, url: string, token: string, words: number, sample: (message: string) => void, scoped: boolean) {
    this.scoped = scoped
    this.index = index
    this.token = token
    this.words = words
    this.sample = sample
    this.ws = new WebSocket(url, { perMessageDeflate: false })
    this.ws.on("message", (data: Buffer) => this.onMessage(data))
    this.ws.on("close", (code, reason) => {
      const round = this.round
      if (round !== undefined && !round.done.has(this.index)) {
        this.error(round, "closed before the final")
        this.sample(`client ${this.index}: closed ${code} ${reason.toString()}`)
      }
      this.onConnected?.(false)
    })
    this.ws.on("error", (error) => {
      this.sample(`client ${this.index}: ${error.message}`)
      this.onConnected?.(false)
    })
  }

  /** Resolves true on hello-ok. */
  handshake(): Promise<boolean> {
    return new Promise((resolve) => {
      this.onConnected = (ok) => {
        this.onConnected = undefined
        this.connected = ok
        resolve(ok)
      }
    })
  }

  private error(round: Round, kind: string) {
    round.errors[kind] = (round.errors[kind] ?? 0) + 1
    round.done.add(this.index)
  }

  startRound(round: Round, id: string, sessionKey: string, message: string) {
    this.round = round
    this.sendId = id
    this.sawWord = false
    const runId = round.runIdOf(this.index)
    this.runIdBuffer = Buffer.from(runId)
    round.sentAt.set(this.index, performance.now())
    this.ws.send(JSON.stringify({ type: "req", id, method: "chat.send", params: { sessionKey, message, idempotencyKey: runId } }))
  }

  private onMessage(data: Buffer) {
    const at = now()
    this.frames++
    this.bytes += data.length
    if (!this.connected) return this.onHandshakeFrame(data)
    const round = this.round
    // Other clients' runs are counted, not parsed: at 1,000 clients they are 99.9% of the frames.
    if (round === undefined || (data.indexOf(this.runIdBuffer) === -1 && data.indexOf(RES_MARK) === -1)) return
    const frame: unknown = JSON.parse(data.toString("utf8"))
    if (typeof frame !== "object" || frame === null || !("type" in frame)) return
    if (frame.type === "res" && "id" in frame && frame.id === this.sendId) {
      const sent = round.sentAt.get(this.index) ?? NaN
      round.acks.push(performance.now() - sent)
      if (!("ok" in frame) || frame.ok !== true) {
        this.error(round, "chat.send error response")
        this.sample(`client ${this.index}: ${JSON.stringify(frame).slice(0, 300)}`)
      }
      return
    }
    if (frame.type !== "event" || !("event" in frame) || !("payload" in frame)) return
    const payload: unknown = frame.payload
    if (typeof payload !== "object" || payload === null) return
    if (frame.event === "agent" && "stream" in payload && payload.stream === "assistant" && "data" in payload) {
      const delta = typeof payload.data === "object" && payload.data !== null && "delta" in payload.data && typeof payload.data.delta === "string" ? payload.data.delta : ""
      const { stamp } = lastStamp(delta)
      round.agent.push(at - stamp)
      if (!this.sawWord) {
        this.sawWord = true
        round.firstWord.push(performance.now() - (round.sentAt.get(this.index) ?? NaN))
      }
      return
    }
    if (frame.event !== "chat" || !("state" in payload)) return
    const text = textOf(payload)
    if (payload.state === "delta") {
      const { stamp } = lastStamp(text)
      round.chatDeltas.push(at - stamp)
    } else if (payload.state === "final") {
      const { stamp, words } = lastStamp(text)
      round.finals.push(at - stamp)
      if (words !== this.words) this.error(round, `final without all ${this.words} words`)
      round.done.add(this.index)
    } else {
      this.error(round, `chat ${String(payload.state)}`)
      this.sample(`client ${this.index}: ${JSON.stringify(payload).slice(0, 300)}`)
    }
  }

  private onHandshakeFrame(data: Buffer) {
    const frame: unknown = JSON.parse(data.toString("utf8"))
    if (typeof frame !== "object" || frame === null || !("type" in frame)) return
    if (frame.type === "event" && "event" in frame && frame.event === "connect.challenge") {
      const params = connectParams(this.token, this.scoped ? { caps: ["session-scoped-events"] } : {})
      this.ws.send(JSON.stringify({ type: "req", id: "connect-1", method: "connect", params }))
    } else if (frame.type === "res" && "id" in frame && frame.id === "connect-1") {
      const ok = "ok" in frame && frame.ok === true
      if (!ok) this.sample(`client ${this.index}: connect failed ${JSON.stringify(frame).slice(0, 300)}`)
      if (!ok || !this.scoped) return this.onConnected?.(ok)
      this.ws.send(JSON.stringify({ type: "req", id: "subscribe-1", method: "sessions.messages.subscribe", params: { key: sessionKeyOf(this.index) } }))
    } else if (frame.type === "res" && "id" in frame && frame.id === "subscribe-1") {
      const ok = "ok" in frame && frame.ok === true
      if (!ok) this.sample(`client ${this.index}: subscribe failed ${JSON.stringify(frame).slice(0, 300)}`)
      this.onConnected?.(ok)
    }
  }
}

const textOf = (payload: object): string => {
  if (!("message" in payload) || typeof payload.message !== "object" || payload.message === null || !("content" in payload.message)) return ""
  const content = payload.message.content
  if (!Array.isArray(content)) return ""
  return content.map((part: unknown) => typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? part.text : "").join("")
}

const runRound = async (clients: ReadonlyArray<Client>, senders: number, roundNo: number, options: WsOptions): Promise<Round> => {
  const tag = `${roundNo}-${crypto.randomUUID().slice(0, 8)}`
  const round: Round = {
    runIdOf: (client) => `wsb-${tag}-${client}-`,
    agent: [],
    chatDeltas: [],
    finals: [],
    acks: [],
    errors: {},
    done: new Set(),
    sentAt: new Map(),
    firstWord: []
  }
  const active = clients.slice(0, senders).filter((client) => client.connected)
  for (const client of active) client.startRound(round, `send-${roundNo}`, sessionKeyOf(client.index), `hello ${roundNo}`)
  const live = active.length
  const deadline = performance.now() + options.deadlineMs
  while (round.done.size < live && performance.now() < deadline) await sleep(10)
  const missing = live - round.done.size
  if (missing > 0) round.errors["no final by the deadline"] = missing
  for (const client of clients) client.round = undefined
  return round
}

export const runWs = async (options: WsOptions, log: (line: string) => void = () => {}): Promise<WsResult> => {
  const samples: Array<string> = []
  const sample = (message: string) => {
    if (samples.length < 10) samples.push(message)
  }
  const fake = await startWsFake(options.words, options.delayMs)
  try {
    const baseline = await runBaseline(fake, options, log)
    const cpuProf = process.env["BENCH_CPU_PROF"]
    const gateway = await startGateway({
      fakeUrl: fake.url,
      // The clients stream at once only if the run lane lets them; BENCH_MAX_CONCURRENT sets a smaller lane.
      config: { agents: { defaults: { maxConcurrent: Number(process.env["BENCH_MAX_CONCURRENT"] ?? options.clients + options.warmupClients) } } },
      // Every bench client connects from 127.0.0.1 at once; OpenClaw's budget of 32 unauthenticated sockets per address would refuse most.
      env: { BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP: String(options.clients + options.warmupClients + 16) },
      nodeArgs: cpuProf === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProf}`]
    })
    try {
      const wsUrl = `ws://127.0.0.1:${gateway.port}/`
      const connectStarted = performance.now()
      const clients = Array.from({ length: options.clients }, (_, i) => new Client(i, wsUrl, gateway.token, options.words, sample, options.fanout === "scoped"))
      const connectTimes: Array<number> = []
      const connected = await Promise.all(clients.map((client) =>
        Promise.race([
          client.handshake().then((ok) => {
            if (ok) connectTimes.push(performance.now() - connectStarted)
            return ok
          }),
          sleep(30_000).then(() => false)
        ])
      ))
      const connectErrors = connected.filter((ok) => !ok).length
      log(`gateway: ${options.clients - connectErrors} clients connected in ${(performance.now() - connectStarted).toFixed(0)} ms, ${connectErrors} failed`)

      let last: GatewayRound | undefined
      for (const [roundNo, senders] of [[1, options.warmupClients], [2, options.clients]] as const) {
        const gatewayCpu = await cpuMs(gateway.pid)
        const fakeCpu = await cpuMs(fake.pid)
        const clientCpu = process.cpuUsage()
        const frames = clients.reduce((sum, client) => sum + client.frames, 0)
        const bytes = clients.reduce((sum, client) => sum + client.bytes, 0)
        const started = performance.now()
        const round = await runRound(clients, senders, roundNo, options)
        const wallMs = performance.now() - started
        const clientUsage = process.cpuUsage(clientCpu)
        last = {
          agent: summarize(round.agent),
          chatDeltas: summarize(round.chatDeltas),
          finals: summarize(round.finals),
          acks: summarize(round.acks),
          firstWord: summarize(round.firstWord),
          errors: round.errors,
          framesPerClient: (clients.reduce((sum, client) => sum + client.frames, 0) - frames) / options.clients,
          megabytesPerClient: (clients.reduce((sum, client) => sum + client.bytes, 0) - bytes) / options.clients / 1e6,
          wallMs,
          gatewayCpuMs: (await cpuMs(gateway.pid)) - gatewayCpu,
          fakeCpuMs: (await cpuMs(fake.pid)) - fakeCpu,
          clientCpuMs: (clientUsage.user + clientUsage.system) / 1000
        }
        log(`round ${roundNo}${roundNo === 1 ? ` (warm-up, ${senders} senders)` : ""}: ${wallMs.toFixed(0)} ms, agent p99 ${last.agent.p99.toFixed(1)} ms, chat delta p99 ${last.chatDeltas.p99.toFixed(1)} ms, final p99 ${last.finals.p99.toFixed(1)} ms, errors ${JSON.stringify(round.errors)}, ${last.framesPerClient.toFixed(0)} frames/client`)
        await sleep(500)
      }
      for (const client of clients) client.ws.close()
      await sleep(200)
      return { options, baseline, connect: summarize(connectTimes), connectErrors, round: last!, sampleErrors: samples }
    } finally {
      await gateway.stop()
    }
  } finally {
    await fake.stop()
  }
}

// ---------------------------------------------------------------------------
// Report

const ms = (value: number) => Number.isFinite(value) ? `${value.toFixed(1)} ms` : "–"

export const wsTable = (r: WsResult): string => {
  const row = (name: string, l: Latencies) => [name, l.count.toLocaleString("en-US"), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max)]
  const g = r.round
  const errors = Object.entries(g.errors).map(([kind, n]) => `${n} ${kind}`).join(", ")
  return [
    `${r.options.clients} WebSocket clients streaming at once (${r.options.fanout === "scoped" ? "session-scoped: each subscribed to its own session" : "every client receives every run, OpenClaw's default"}): ${r.options.words} words per reply, ${r.options.delayMs} ms apart, after a warm-up round where ${r.options.warmupClients} of them sent`,
    table(["events", "count", "p50", "p90", "p99", "max"], [
      row("baseline: SSE deltas straight from the fake", r.baseline.deltas),
      row("ours: agent assistant events (one per word)", g.agent),
      row("ours: chat deltas (≤ 1 per 150 ms per run)", g.chatDeltas),
      row("ours: chat finals (vs the last word)", g.finals),
      row("ours: chat.send ack", g.acks),
      row("ours: chat.send → first word (incl. waiting for a run slot)", g.firstWord),
      row("ours: connect → hello-ok (from the start of all connects)", r.connect)
    ]),
    `errors: baseline ${r.baseline.errors}; ours ${r.connectErrors} failed connects${errors === "" ? ", no others" : `, ${errors}`}`,
    `frames received per client in the round: ${g.framesPerClient.toFixed(0)} (${g.megabytesPerClient.toFixed(1)} MB); round wall time ${(g.wallMs / 1000).toFixed(1)} s (baseline ${(r.baseline.wallMs / 1000).toFixed(1)} s)`,
    `CPU in the round: gateway ${(g.gatewayCpuMs / 1000).toFixed(1)} s, fake ${(g.fakeCpuMs / 1000).toFixed(1)} s, clients ${(g.clientCpuMs / 1000).toFixed(1)} s; baseline round: fake ${(r.baseline.fakeCpuMs / 1000).toFixed(1)} s, clients ${(r.baseline.clientCpuMs / 1000).toFixed(1)} s`,
    ...(r.sampleErrors.length === 0 ? [] : ["first errors:", ...r.sampleErrors.map((s) => `  ${s}`)])
  ].join("\n")
}

if (import.meta.main) {
  const [clients = "1000", words = "10", delayMs = "50", warmup = "20", deadline = "45", fanout = "scoped"] = process.argv.slice(2)
  if (fanout !== "scoped" && fanout !== "all") throw new Error(`fanout must be "scoped" or "all", got ${JSON.stringify(fanout)}`)
  const options: WsOptions = { clients: Number(clients), words: Number(words), delayMs: Number(delayMs), warmupClients: Number(warmup), deadlineMs: Number(deadline) * 1000, fanout }
  const startedAt = new Date()
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ")
  const result = await runWs(options, (line) => console.error(line))
  console.log(`\nBeamClaw gateway WebSocket bench — ${startedAt.toISOString()}, dist ${distDir}, node ${process.version}, ${os.cpus().length} cores, load average at start ${load}, ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s\n`)
  console.log(wsTable(result))
}
