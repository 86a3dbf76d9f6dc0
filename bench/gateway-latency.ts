/**
 * Added latency of a gateway turn over calling the fake Anthropic directly,
 * sequential requests, one client.
 *
 *   node bench/gateway-latency.ts [turns=2000] [warmup=200] [sessions=fresh|user]
 *
 * Each iteration makes three requests, in alternating order:
 *   - ours, non-streaming: POST /v1/chat/completions, read to the end
 *   - ours, streaming: the same with stream:true; time to the first chunk with text
 *   - baseline: POST the fake's /v1/messages with the very body the gateway
 *     last sent it (stream:true, as our provider calls it), read to the end;
 *     its total time is the baseline of the first, its time to the first
 *     content_block_delta the baseline of the second.
 * `sessions=fresh` sends no `user`, so every request is a new session (the
 * OpenAI-compatible default); `sessions=user` sends a `user` that changes
 * every ten iterations, so each session takes twenty turns and its history
 * grows to forty messages (the replayed body grows with it).
 * The gateway writes transcripts as always. BENCH_CPU_PROF=<dir> runs the
 * gateway under --cpu-prof and writes the profile there on exit. BENCH_GC=1
 * logs the gateway's GC pauses and reports how many of the slowest
 * non-streaming turns (the top 2%) overlapped one.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { table } from "./common.ts"
import {
  anthropicFirstDelta,
  cpuMs,
  distDir,
  fmtUs,
  gcLogArgs,
  gcVersusTail,
  keepAliveAgent,
  openAiFirstContent,
  percentile,
  post,
  readGcLog,
  startFake,
  startGateway,
  type Timed
} from "./gateway-common.ts"

export interface LatencyResult {
  readonly turns: number
  readonly sessions: "fresh" | "user"
  /** ms, per iteration */
  readonly oursTurn: ReadonlyArray<number>
  readonly oursFirst: ReadonlyArray<number>
  readonly baseTurn: ReadonlyArray<number>
  readonly baseFirst: ReadonlyArray<number>
  readonly addedTurn: ReadonlyArray<number>
  readonly addedFirst: ReadonlyArray<number>
  /** CPU ms per gateway turn (both ours requests of an iteration count as turns). */
  readonly gatewayCpuPerTurn: number
  readonly fakeCpuPerRequest: number
  readonly errors: number
  readonly wallMs: number
  /** With BENCH_GC=1: the gateway's GC pauses against the slowest non-streaming turns. */
  readonly gc?: ReturnType<typeof gcVersusTail> | undefined
}

export const runLatency = async (turns: number, warmup: number, sessions: "fresh" | "user", log: (line: string) => void = () => {}): Promise<LatencyResult> => {
  const fake = await startFake()
  const profDir = process.env["BENCH_CPU_PROF"]
  const gcLog = process.env["BENCH_GC"] === "1" ? path.join(os.tmpdir(), `beamclaw-bench-gc-${process.pid}.log`) : undefined
  const gateway = await startGateway({
    fakeUrl: fake.url,
    nodeArgs: [...(profDir !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []), ...(gcLog !== undefined ? gcLogArgs(gcLog) : [])]
  })
  const agent = keepAliveAgent(1)
  const headers = { authorization: `Bearer ${gateway.token}` }
  const baseHeaders = { "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "x-bench-baseline": "1" }
  // Ten iterations (twenty turns) per `user`, so a session's history stays at a chat's length.
  const user = (i: number) => sessions === "user" ? { user: `bench-latency-${Math.floor(i / 10)}` } : {}
  const chat = (i: number, stream: boolean) => JSON.stringify({ model: "beamclaw", stream, ...user(i), messages: [{ role: "user", content: `bench turn ${i}` }] })
  let errors = 0
  const check = (timed: Timed, what: string) => {
    if (timed.status !== 200) {
      errors++
      if (errors <= 3) log(`${what}: HTTP ${timed.status} ${timed.body.slice(0, 300)}`)
    }
    return timed
  }
  /** Wall-clock start (epoch ms) of each measured non-streaming turn, for the GC report. */
  const turnStarts: Array<number> = []
  const result: { oursTurn: Array<number>; oursFirst: Array<number>; baseTurn: Array<number>; baseFirst: Array<number> } = {
    oursTurn: [],
    oursFirst: [],
    baseTurn: [],
    baseFirst: []
  }
  const started = performance.now()
  let cpuAtStart = { gateway: 0, fake: 0 }
  try {
    for (let i = 0; i < warmup + turns; i++) {
      if (i === warmup) {
        cpuAtStart = { gateway: await cpuMs(gateway.pid), fake: await cpuMs(fake.pid) }
        log(`latency (${sessions} sessions): warm-up done, measuring ${turns} iterations`)
      }
      let turnStart = 0
      const ours = async () => {
        turnStart = performance.timeOrigin + performance.now()
        return check(await post(agent, gateway.url, "/v1/chat/completions", headers, chat(i, false)), "ours")
      }
      const oursStream = () => post(agent, gateway.url, "/v1/chat/completions", headers, chat(i, true), openAiFirstContent)
      const body = JSON.stringify(await fake.lastGatewayBody() ?? JSON.parse(`{"model":"claude-sonnet-5-5","max_tokens":8192,"stream":true,"messages":[{"role":"user","content":"warm-up"}]}`))
      const base = () => post(agent, fake.url, "/v1/messages", baseHeaders, body, anthropicFirstDelta)
      let turn: Timed, stream: Timed, baseline: Timed
      if (i % 2 === 0) {
        turn = await ours()
        baseline = check(await base(), "baseline")
        stream = check(await oursStream(), "ours stream")
      } else {
        stream = check(await oursStream(), "ours stream")
        baseline = check(await base(), "baseline")
        turn = await ours()
      }
      if (i >= warmup) {
        result.oursTurn.push(turn.totalMs)
        turnStarts.push(turnStart)
        result.oursFirst.push(stream.firstMs)
        result.baseTurn.push(baseline.totalMs)
        result.baseFirst.push(baseline.firstMs)
      }
      if ((i + 1) % 500 === 0) log(`  ${i + 1}/${warmup + turns}`)
    }
    const cpuAtEnd = { gateway: await cpuMs(gateway.pid), fake: await cpuMs(fake.pid) }
    const gc = gcLog === undefined ? undefined : gcVersusTail(result.oursTurn.map((ms, k) => ({ at: turnStarts[k] ?? 0, ms })), await readGcLog(gcLog))
    return {
      gc,
      turns,
      sessions,
      ...result,
      addedTurn: result.oursTurn.map((ms, i) => ms - (result.baseTurn[i] ?? NaN)),
      addedFirst: result.oursFirst.map((ms, i) => ms - (result.baseFirst[i] ?? NaN)),
      gatewayCpuPerTurn: (cpuAtEnd.gateway - cpuAtStart.gateway) / (2 * turns),
      fakeCpuPerRequest: (cpuAtEnd.fake - cpuAtStart.fake) / (3 * turns),
      errors,
      wallMs: performance.now() - started
    }
  } finally {
    agent.destroy()
    await gateway.stop()
    await fake.stop()
    if (gcLog !== undefined) await fs.rm(gcLog, { force: true })
  }
}

const p = (values: ReadonlyArray<number>, q: number) => fmtUs(percentile(values, q))

export const latencyTable = (r: LatencyResult): string =>
  table(["", "ours", "baseline (fake direct)", "ours − baseline, paired", "goal", ""], [
    [
      `non-streaming turn, p50 (${r.sessions} sessions)`,
      p(r.oursTurn, 50),
      p(r.baseTurn, 50),
      p(r.addedTurn, 50),
      "<= 1 ms",
      percentile(r.addedTurn, 50) <= 1 ? "met" : "NOT met"
    ],
    [
      `non-streaming turn, p99 (${r.sessions} sessions)`,
      p(r.oursTurn, 99),
      p(r.baseTurn, 99),
      p(r.addedTurn, 99),
      "<= 5 ms",
      percentile(r.addedTurn, 99) <= 5 ? "met" : "NOT met"
    ],
    [
      `first token, p50 (${r.sessions} sessions)`,
      p(r.oursFirst, 50),
      p(r.baseFirst, 50),
      p(r.addedFirst, 50),
      "<= 1 ms",
      percentile(r.addedFirst, 50) <= 1 ? "met" : "NOT met"
    ],
    [`first token, p99 (${r.sessions} sessions)`, p(r.oursFirst, 99), p(r.baseFirst, 99), p(r.addedFirst, 99), "", ""]
  ])

export const latencyDetails = (r: LatencyResult): string =>
  `${r.turns} iterations (${r.sessions} sessions), ${r.errors} errors, ${(r.wallMs / 1000).toFixed(1)} s; ` +
  `gateway CPU ${r.gatewayCpuPerTurn.toFixed(2)} ms per turn, fake CPU ${r.fakeCpuPerRequest.toFixed(2)} ms per request` +
  (r.gc === undefined ? "" : `\nGC: ${r.gc.overlapping} of the ${r.gc.slow} slowest non-streaming turns (>= ${r.gc.threshold.toFixed(2)} ms) overlapped a GC pause; ` +
    `scavenges ${r.gc.minor.count} (p50 ${r.gc.minor.p50.toFixed(2)} ms, max ${r.gc.minor.max.toFixed(2)} ms), mark-compacts ${r.gc.major.count} (max ${r.gc.major.max.toFixed(2)} ms)`)

if (import.meta.main) {
  const [turnsText = "2000", warmupText = "200", sessionsText = "fresh"] = process.argv.slice(2)
  if (sessionsText !== "fresh" && sessionsText !== "user") throw new Error(`sessions must be fresh or user, not ${sessionsText}`)
  console.error(`dist: ${distDir}; ${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  const result = await runLatency(Number(turnsText), Number(warmupText), sessionsText, (line) => console.error(line))
  console.log(latencyTable(result))
  console.log(latencyDetails(result))
}
