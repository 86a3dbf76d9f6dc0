/**
 * What session maintenance costs while it holds the count cap: one-request
 * OpenAI turns (no `user`, so each makes a session) against a gateway whose
 * cap is being enforced all along, beside the same turns against a gateway
 * whose cap is never reached (the baseline), in the same run.
 *
 *   node bench/maintenance.ts [requests=3000] [cap=500] [rounds=3]
 *
 * The two gateways run one after the other, `rounds` times, in alternating
 * order (this machine's speed drifts by more than the effect); the table has
 * the medians of the rounds: turn latency, the gateway's CPU per turn, and
 * what each left on disk (the capped gateway must end near its cap, within
 * the 5% batching slack, with no transcript of a removed session left).
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { table } from "./common.ts"
import { fmtMs2, fmtUs, keepAliveAgent, percentile, post, startFake, startGateway } from "./gateway-common.ts"

/** User and system CPU (ms) of a process so far, from /proc/<pid>/stat: erasing files is mostly kernel time. */
const cpuSplit = async (pid: number): Promise<{ readonly user: number; readonly sys: number }> => {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 }
}

export interface MaintenanceSide {
  readonly label: string
  readonly turnsMs: ReadonlyArray<number>
  readonly cpuPerTurnMs: number
  readonly sysPerTurnMs: number
  readonly indexEntries: number
  readonly transcripts: number
  readonly errors: number
}

const runSide = async (label: string, fakeUrl: string, maxEntries: number, requests: number, warmup: number): Promise<MaintenanceSide> => {
  const gateway = await startGateway({ fakeUrl, config: { session: { maintenance: { maxEntries } } } })
  const agent = keepAliveAgent(1)
  const headers = { authorization: `Bearer ${gateway.token}` }
  const turnsMs: Array<number> = []
  let errors = 0
  let cpuStart = { user: 0, sys: 0 }
  try {
    for (let i = 0; i < warmup + requests; i++) {
      if (i === warmup) cpuStart = await cpuSplit(gateway.pid)
      const timed = await post(agent, gateway.url, "/v1/chat/completions", headers, JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: `request ${i}` }] }))
      if (timed.status !== 200) errors++
      if (i >= warmup) turnsMs.push(timed.totalMs)
    }
    const cpuEnd = await cpuSplit(gateway.pid)
    const cpuPerTurnMs = (cpuEnd.user + cpuEnd.sys - cpuStart.user - cpuStart.sys) / requests
    const sysPerTurnMs = (cpuEnd.sys - cpuStart.sys) / requests
    // The last index write and the pass it may set off.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const dir = path.join(gateway.home, "agents", "main", "sessions")
    const index = JSON.parse(await fs.readFile(path.join(dir, "sessions.json"), "utf8")) as Record<string, unknown>
    const transcripts = (await fs.readdir(dir)).filter((name) => name.endsWith(".jsonl")).length
    return { label, turnsMs, cpuPerTurnMs, sysPerTurnMs, indexEntries: Object.keys(index).length, transcripts, errors }
  } finally {
    agent.destroy()
    await gateway.stop()
  }
}

export interface MaintenanceResult {
  readonly label: string
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuPerTurnMs: number
  readonly sysPerTurnMs: number
  readonly indexEntries: number
  readonly transcripts: number
  readonly errors: number
}

const median = (values: ReadonlyArray<number>): number => percentile(values, 50)

export const runMaintenance = async (requests = 3000, cap = 500, rounds = 3, log: (line: string) => void = () => {}): Promise<ReadonlyArray<MaintenanceResult>> => {
  const fake = await startFake()
  try {
    const warmup = Math.min(200, Math.floor(cap / 2))
    const capped: Array<MaintenanceSide> = []
    const baseline: Array<MaintenanceSide> = []
    for (let round = 0; round < rounds; round++) {
      const runCapped = async () => capped.push(await runSide(`cap of ${cap} held all along`, fake.url, cap, requests, warmup))
      const runBaseline = async () => baseline.push(await runSide("cap never reached (baseline)", fake.url, 1_000_000, requests, warmup))
      if (round % 2 === 0) {
        await runCapped()
        await runBaseline()
      } else {
        await runBaseline()
        await runCapped()
      }
      log(`round ${round + 1}/${rounds}: CPU per turn (kernel) capped ${fmtMs2(capped.at(-1)?.cpuPerTurnMs ?? 0)} (${fmtMs2(capped.at(-1)?.sysPerTurnMs ?? 0)}), baseline ${fmtMs2(baseline.at(-1)?.cpuPerTurnMs ?? 0)} (${fmtMs2(baseline.at(-1)?.sysPerTurnMs ?? 0)})`)
    }
    const summarise = (sides: ReadonlyArray<MaintenanceSide>): MaintenanceResult => ({
      label: sides[0]?.label ?? "",
      p50Ms: median(sides.map((side) => percentile(side.turnsMs, 50))),
      p99Ms: median(sides.map((side) => percentile(side.turnsMs, 99))),
      cpuPerTurnMs: median(sides.map((side) => side.cpuPerTurnMs)),
      sysPerTurnMs: median(sides.map((side) => side.sysPerTurnMs)),
      indexEntries: Math.max(...sides.map((side) => side.indexEntries)),
      transcripts: Math.max(...sides.map((side) => side.transcripts)),
      errors: sides.reduce((sum, side) => sum + side.errors, 0)
    })
    return [summarise(capped), summarise(baseline)]
  } finally {
    await fake.stop()
  }
}

export const maintenanceTable = (results: ReadonlyArray<MaintenanceResult>): string =>
  table(
    ["one-request turns (no `user`), medians of rounds", "p50", "p99", "gateway CPU per turn", "of which kernel", "sessions in the index after (max)", "transcripts after (max)", "errors"],
    results.map((result) => [
      result.label,
      fmtUs(result.p50Ms),
      fmtUs(result.p99Ms),
      fmtMs2(result.cpuPerTurnMs),
      fmtMs2(result.sysPerTurnMs),
      String(result.indexEntries),
      String(result.transcripts),
      String(result.errors)
    ])
  )

if (import.meta.main) {
  const requests = Number(process.argv[2] ?? 3000)
  const cap = Number(process.argv[3] ?? 500)
  const rounds = Number(process.argv[4] ?? 3)
  console.log(maintenanceTable(await runMaintenance(requests, cap, rounds, (line) => console.log(line))))
}
