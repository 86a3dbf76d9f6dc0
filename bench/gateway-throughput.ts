/**
 * Turns per second with C concurrent clients, ours against the fake alone.
 *
 *   node bench/gateway-throughput.ts [seconds=8] [rounds=2] [concurrency=16,64]
 *
 * ours: C clients, each looping POST /v1/chat/completions (non-streaming),
 * each with its own sessions through `user` (a client moves to a new `user`
 * every 20 turns, so histories stay at a chat's length; transcripts are
 * written as always). baseline: C clients looping POST /v1/messages on the
 * fake with stream:true, read to the end, replaying the body the gateway
 * sent on the 11th turn of a session (the mean history of a 20-turn session).
 * floor: the same requests as ours to bench/proxy-floor.ts, a bare node:http
 * process that does only what no gateway can skip (HTTP in, the model call
 * with the same body, a transcript append made durable, HTTP out): the most
 * any Node gateway could reach on this machine.
 * stack floor: the same again with bench/stack-floor.ts, which does what the
 * floor does on the decided stack (effect/http, the Anthropic SDK, Effect):
 * the most a gateway written on this stack could reach here.
 * Phases of `seconds` each, ours, the floors and the baseline in turn (the
 * order flips every round), after a 2 s warm-up of each. The load generator,
 * the gateway (or the floor) and the fake share the machine's cores: see the
 * CPU columns.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { nodeBin, repoRoot, table } from "./common.ts"
import { cpuMs, distDir, fmtMs2, keepAliveAgent, percentile, post, startFake, startGateway, stopChild } from "./gateway-common.ts"

/** A floor (bench/proxy-floor.ts or bench/stack-floor.ts) in its own process, replaying `body` to the fake. */
const startFloor = async (script: "proxy-floor.ts" | "stack-floor.ts", fakeUrl: string, body: string) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-bench-floor-"))
  const bodyFile = path.join(dir, "body.json")
  await fs.writeFile(bodyFile, body)
  const child: ChildProcess = spawn(nodeBin, [path.join(repoRoot, "bench", script), fakeUrl, bodyFile, dir], { stdio: ["ignore", "pipe", "inherit"] })
  const url = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once("line", resolve)
    child.once("exit", (code) => reject(new Error(`bench/${script} exited with ${code}`)))
  })
  return {
    url,
    pid: child.pid ?? 0,
    stop: async () => {
      await stopChild(child, 5_000)
      await fs.rm(dir, { recursive: true, force: true })
    }
  }
}

export interface Phase {
  readonly who: "ours" | "floor" | "stack floor" | "fake alone"
  readonly concurrency: number
  readonly turns: number
  readonly errors: number
  readonly seconds: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  /** CPU ms per second of wall time: gateway, fake, load generator. */
  readonly cpu: { readonly gateway: number; readonly fake: number; readonly loadgen: number }
}

export interface ThroughputResult {
  readonly phases: ReadonlyArray<Phase>
}

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

export const runThroughput = async (seconds: number, rounds: number, levels: ReadonlyArray<number>, log: (line: string) => void = () => {}): Promise<ThroughputResult> => {
  const fake = await startFake()
  const profDir = process.env["BENCH_CPU_PROF"]
  const gateway = await startGateway({ fakeUrl: fake.url, nodeArgs: profDir !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [] })
  const maxClients = Math.max(...levels)
  const agent = keepAliveAgent(maxClients)
  const headers = { authorization: `Bearer ${gateway.token}` }
  const baseHeaders = { "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "x-bench-baseline": "1" }
  const chat = (user: string, n: number) => JSON.stringify({ model: "beamclaw", user, messages: [{ role: "user", content: `bench turn ${n}` }] })
  let phaseId = 0
  let stopFloor = async () => {}
  let stopStackFloor = async () => {}
  try {
    // The baseline's body: what the gateway sends on a session's 11th turn.
    for (let n = 0; n < 11; n++) await post(agent, gateway.url, "/v1/chat/completions", headers, chat("bench-tp-capture", n))
    const baseBody = JSON.stringify(await fake.lastGatewayBody())
    const floor = await startFloor("proxy-floor.ts", fake.url, baseBody)
    stopFloor = floor.stop
    const stackFloor = await startFloor("stack-floor.ts", fake.url, baseBody)
    stopStackFloor = stackFloor.stop

    const phase = async (who: Phase["who"], concurrency: number, durationMs: number): Promise<Phase> => {
      const id = ++phaseId
      const latencies: Array<number> = []
      let errors = 0
      const serverPid = who === "floor" ? floor.pid : who === "stack floor" ? stackFloor.pid : gateway.pid
      const cpuBefore = { gateway: await cpuMs(serverPid), fake: await cpuMs(fake.pid), loadgen: process.cpuUsage() }
      const started = performance.now()
      const deadline = started + durationMs
      const client = async (c: number) => {
        let n = 0
        while (performance.now() < deadline) {
          const result = who === "ours"
            ? await post(agent, gateway.url, "/v1/chat/completions", headers, chat(`bench-tp-${id}-${c}-${Math.floor(n / 20)}`, n))
            : who === "floor" || who === "stack floor"
            ? await post(agent, who === "floor" ? floor.url : stackFloor.url, "/v1/chat/completions", headers, chat(`bench-tp-${id}-${c}-${Math.floor(n / 20)}`, n))
            : await post(agent, fake.url, "/v1/messages", baseHeaders, baseBody)
          n++
          if (result.status === 200) latencies.push(result.totalMs)
          else if (++errors <= 3) log(`${who}: HTTP ${result.status} ${result.body.slice(0, 300)}`)
        }
      }
      await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c).catch((error: unknown) => {
        errors++
        log(`${who} client ${c}: ${String(error)}`)
      })))
      const elapsed = (performance.now() - started) / 1000
      const loadgen = process.cpuUsage(cpuBefore.loadgen)
      return {
        who,
        concurrency,
        turns: latencies.length,
        errors,
        seconds: elapsed,
        perSecond: latencies.length / elapsed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        cpu: {
          gateway: who === "fake alone" ? 0 : (await cpuMs(serverPid) - cpuBefore.gateway) / elapsed,
          fake: (await cpuMs(fake.pid) - cpuBefore.fake) / elapsed,
          loadgen: (loadgen.user + loadgen.system) / 1000 / elapsed
        }
      }
    }

    log("throughput: warm-up")
    const warmOurs = await phase("ours", maxClients, 2000)
    const warmFloor = await phase("floor", maxClients, 2000)
    const warmStack = await phase("stack floor", maxClients, 2000)
    const warmFake = await phase("fake alone", maxClients, 2000)
    log(`  warm-up: ours ${warmOurs.turns} turns, floor ${warmFloor.turns}, stack floor ${warmStack.turns}, fake alone ${warmFake.turns} requests`)
    const phases: Array<Phase> = []
    for (let round = 0; round < rounds; round++) {
      for (const concurrency of levels) {
        const order: Array<Phase["who"]> = round % 2 === 0 ? ["ours", "floor", "stack floor", "fake alone"] : ["fake alone", "stack floor", "floor", "ours"]
        for (const who of order) {
          const result = await phase(who, concurrency, seconds * 1000)
          log(`  round ${round + 1}, ${who} at ${concurrency}: ${result.perSecond.toFixed(0)} turns/s, ${result.errors} errors`)
          phases.push(result)
        }
      }
    }
    return { phases }
  } finally {
    agent.destroy()
    await stopFloor()
    await stopStackFloor()
    await gateway.stop()
    await fake.stop()
  }
}

export const throughputTable = (result: ThroughputResult): string => {
  const levels = [...new Set(result.phases.map((p) => p.concurrency))]
  const rows: Array<Array<string>> = []
  for (const concurrency of levels) {
    const of = (who: Phase["who"]) => result.phases.filter((p) => p.who === who && p.concurrency === concurrency)
    const ours = of("ours")
    const floor = of("floor")
    const stackFloor = of("stack floor")
    const fake = of("fake alone")
    const rate = (phases: ReadonlyArray<Phase>) => sum(phases.map((p) => p.turns)) / sum(phases.map((p) => p.seconds))
    const ratio = rate(ours) / rate(fake)
    rows.push([
      String(concurrency),
      `${rate(ours).toFixed(0)}/s`,
      `${rate(fake).toFixed(0)}/s`,
      `${(100 * ratio).toFixed(0)}%`,
      `${rate(floor).toFixed(0)}/s (${(100 * rate(floor) / rate(fake)).toFixed(0)}%)`,
      `${rate(stackFloor).toFixed(0)}/s (${(100 * rate(stackFloor) / rate(fake)).toFixed(0)}%)`,
      concurrency === 64 ? ">= 50%" : "",
      concurrency === 64 ? (ratio >= 0.5 ? "met" : "NOT met") : "",
      ours.map((p) => `${fmtMs2(p.p50)}/${fmtMs2(p.p99)}`).join(", "),
      fake.map((p) => `${fmtMs2(p.p50)}/${fmtMs2(p.p99)}`).join(", "),
      String(sum(ours.map((p) => p.errors)) + sum(fake.map((p) => p.errors)))
    ])
  }
  return table(["clients", "ours", "fake alone", "ours/fake", "floor (bare node:http), /fake", "stack floor (effect/http + SDK), /fake", "goal", "", "ours p50/p99 per round", "fake p50/p99 per round", "errors"], rows)
}

export const throughputCpu = (result: ThroughputResult): string =>
  table(
    ["phase", "turns/s", "gateway (or floor) CPU", "fake CPU", "load generator CPU", "gateway (or floor) CPU per turn"],
    result.phases.map((p) => [
      `${p.who} at ${p.concurrency}`,
      p.perSecond.toFixed(0),
      `${(p.cpu.gateway / 10).toFixed(0)}%`,
      `${(p.cpu.fake / 10).toFixed(0)}%`,
      `${(p.cpu.loadgen / 10).toFixed(0)}%`,
      p.who === "fake alone" ? "" : fmtMs2(p.cpu.gateway / p.perSecond)
    ])
  )

if (import.meta.main) {
  const [secondsText = "8", roundsText = "2", levelsText = "16,64"] = process.argv.slice(2)
  console.error(`dist: ${distDir}; ${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  const result = await runThroughput(Number(secondsText), Number(roundsText), levelsText.split(",").map(Number), (line) => console.error(line))
  console.log(throughputTable(result))
  console.log("")
  console.log(throughputCpu(result))
}
