/**
 * Added latency per non-streaming turn of the two floors of
 * bench/gateway-throughput.ts over calling the fake directly: the share of
 * the latency goal (p50 <= 1 ms over the fake) that a gateway on bare
 * node:http (bench/proxy-floor.ts) and one on the decided stack
 * (bench/stack-floor.ts) spend before doing anything of their own. Both make
 * their transcript line durable with fdatasync before answering, as the
 * gateway does. Sequential requests, one client; each floor request is paired
 * with a direct call to the fake with the same body, in alternating order.
 *
 *   node bench/floor-latency.ts [turns=2000] [warmup=500]
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { nodeBin, repoRoot, table } from "./common.ts"
import { fmtUs, keepAliveAgent, percentile, post, startFake, stopChild } from "./gateway-common.ts"

export interface FloorLatency {
  readonly floor: "floor (bare node:http)" | "stack floor (effect/http + SDK)"
  /** ms, per turn */
  readonly turn: ReadonlyArray<number>
  readonly direct: ReadonlyArray<number>
  readonly added: ReadonlyArray<number>
}

const floors = [["proxy-floor.ts", "floor (bare node:http)"], ["stack-floor.ts", "stack floor (effect/http + SDK)"]] as const

export const runFloorLatency = async (turns: number, warmup: number): Promise<ReadonlyArray<FloorLatency>> => {
  const fake = await startFake()
  const body = JSON.stringify({ model: "claude-sonnet-5-5", max_tokens: 8192, stream: true, system: "You are a bench.", messages: [{ role: "user", content: "bench turn" }] })
  const baseHeaders = { "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "x-bench-baseline": "1" }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-bench-floor-latency-"))
  const bodyFile = path.join(dir, "body.json")
  await fs.writeFile(bodyFile, body)
  const results: Array<FloorLatency> = []
  try {
    for (const [script, floor] of floors) {
      const child: ChildProcess = spawn(nodeBin, [path.join(repoRoot, "bench", script), fake.url, bodyFile, dir], { stdio: ["ignore", "pipe", "inherit"] })
      const url = await new Promise<string>((resolve, reject) => {
        readline.createInterface({ input: child.stdout! }).once("line", resolve)
        child.once("exit", (code) => reject(new Error(`bench/${script} exited with ${code}`)))
      })
      const agent = keepAliveAgent(1)
      const result = { floor, turn: new Array<number>(), direct: new Array<number>(), added: new Array<number>() }
      try {
        for (let i = 0; i < warmup + turns; i++) {
          const viaFloor = () => post(agent, url, "/v1/chat/completions", {}, JSON.stringify({ model: "beamclaw", user: `bench-${Math.floor(i / 20)}`, messages: [{ role: "user", content: `bench turn ${i}` }] }))
          const direct = () => post(agent, fake.url, "/v1/messages", baseHeaders, body)
          let a, b
          if (i % 2 === 0) {
            a = await viaFloor()
            b = await direct()
          } else {
            b = await direct()
            a = await viaFloor()
          }
          if (a.status !== 200 || b.status !== 200) throw new Error(`${script}: HTTP ${a.status} / ${b.status}`)
          if (i < warmup) continue
          result.turn.push(a.totalMs)
          result.direct.push(b.totalMs)
          result.added.push(a.totalMs - b.totalMs)
        }
      } finally {
        agent.destroy()
        await stopChild(child, 5_000)
      }
      results.push(result)
    }
  } finally {
    await fake.stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
  return results
}

export const floorLatencyTable = (results: ReadonlyArray<FloorLatency>): string =>
  table(
    ["", "turn p50", "fake direct p50", "added p50, paired", "added p99, paired"],
    results.map((r) => [r.floor, fmtUs(percentile(r.turn, 50)), fmtUs(percentile(r.direct, 50)), fmtUs(percentile(r.added, 50)), fmtUs(percentile(r.added, 99))])
  )

if (import.meta.main) {
  const [turnsText = "2000", warmupText = "500"] = process.argv.slice(2)
  console.error(`${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  console.log(floorLatencyTable(await runFloorLatency(Number(turnsText), Number(warmupText))))
}
