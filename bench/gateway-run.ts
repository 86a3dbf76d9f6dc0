/**
 * The gateway benches in one go (figures only, no pass/fail exit):
 *   npm run bench:gateway            (builds first)
 *   node bench/gateway-run.ts [turns=2000] [seconds=8] [rounds=2] [wsClients=1000]
 * Uses the dist directory named by BEAMCLAW_DIST_DIR (default dist).
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"
import { repoRoot } from "./common.ts"
import { distDir } from "./gateway-common.ts"
import { floorLatencyTable, runFloorLatency } from "./floor-latency.ts"
import { latencyDetails, latencyTable, runLatency } from "./gateway-latency.ts"
import { runThroughput, throughputCpu, throughputTable } from "./gateway-throughput.ts"
import { runWs, wsTable } from "./gateway-ws.ts"

const [turnsText = "2000", secondsText = "8", roundsText = "2", wsClientsText = "1000"] = process.argv.slice(2)
const log = (line: string) => console.error(line)
const commit = (() => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
})()

const startedAt = new Date()
const load = os.loadavg().map((l) => l.toFixed(2)).join(" ")
const fresh = await runLatency(Number(turnsText), 200, "fresh", log)
const user = await runLatency(Number(turnsText), 200, "user", log)
log("latency of the floors")
const floorLatency = await runFloorLatency(Number(turnsText), 500)
const throughput = await runThroughput(Number(secondsText), Number(roundsText), [16, 64], log)
const ws = await runWs({ clients: Number(wsClientsText), words: 10, delayMs: 50, warmupClients: 20, deadlineMs: 45_000, fanout: "scoped" }, log)
const wsAll = await runWs({ clients: Number(wsClientsText), words: 10, delayMs: 50, warmupClients: 20, deadlineMs: 45_000, fanout: "all" }, log)

console.log(`\nBeamClaw gateway benchmarks — ${startedAt.toISOString()}, commit ${commit}, dist ${distDir}, node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), load average at start ${load}, ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s\n`)
console.log(latencyTable(fresh))
console.log(latencyDetails(fresh))
console.log("")
console.log(latencyTable(user))
console.log(latencyDetails(user))
console.log("")
console.log(floorLatencyTable(floorLatency))
console.log("")
console.log(throughputTable(throughput))
console.log("")
console.log(throughputCpu(throughput))
console.log("")
console.log(wsTable(ws))
console.log("")
console.log(wsTable(wsAll))
