/**
 * All benchmarks, then one summary table. Figures only, no pass/fail exit.
 *   npm run bench            (builds dist/ first)
 *   node bench/run.ts [startupRuns] [liveCount] [passivatedCount]
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"
import { fmtMiB, fmtMs, MiB, repoRoot, table } from "./common.ts"
import { runSessions, sessionsDetails, sessionsTable } from "./sessions.ts"
import { runStartup, startupTable } from "./startup.ts"

const [runsText = "7", liveText = "10000", passivatedText = "100000"] = process.argv.slice(2)
const log = (line: string) => console.error(line)

const commit = (() => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
})()

const startedAt = new Date()
const startup = await runStartup(Number(runsText), log)
const sessions = await runSessions(Number(liveText), Number(passivatedText), log)

const ratio = (a: number, b: number) => a / b
const { ours, baseline } = startup
const liveOver = sessions.live.after.rss - sessions.live.idle.rss
const passivatedOver = sessions.passivated.after.rss - sessions.passivated.idle.rss
const reloadedOver = sessions.reloaded.after.rss - sessions.reloaded.idle.rss

console.log(`\nBeamClaw benchmarks — ${startedAt.toISOString()}, commit ${commit}, node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM\n`)
console.log(startupTable(startup))
console.log("")
console.log(sessionsTable(sessions))
console.log(`\n${sessionsDetails(sessions)}\n`)
console.log(table(["summary", "ours", "baseline", "figure", "goal", ""], [
  ["cold start to /health 200 (median)", fmtMs(ours.readyMedian), fmtMs(baseline.readyMedian), `${ratio(ours.readyMedian, baseline.readyMedian).toFixed(2)}x`, "<= 1.5x", ratio(ours.readyMedian, baseline.readyMedian) <= 1.5 ? "met" : "NOT met"],
  ["RSS after start (median)", fmtMiB(ours.rssMedian), fmtMiB(baseline.rssMedian), `${ratio(ours.rssMedian, baseline.rssMedian).toFixed(2)}x`, "<= 1.5x", ratio(ours.rssMedian, baseline.rssMedian) <= 1.5 ? "met" : "NOT met"],
  [`${sessions.live.count} live sessions`, fmtMiB(sessions.live.after.rss), `${fmtMiB(sessions.live.idle.rss)} idle`, `+${fmtMiB(liveOver)}`, "<= +150 MiB", liveOver / MiB <= 150 ? "met" : "NOT met"],
  [`${sessions.passivated.count} passivated sessions`, fmtMiB(sessions.passivated.after.rss), `${fmtMiB(sessions.passivated.idle.rss)} idle`, `+${fmtMiB(passivatedOver)}`, "<= +300 MiB", passivatedOver / MiB <= 300 ? "met" : "NOT met"],
  [`${sessions.reloaded.indexEntries} passivated, reloaded`, fmtMiB(sessions.reloaded.after.rss), `${fmtMiB(sessions.reloaded.idle.rss)} idle`, `+${fmtMiB(reloadedOver)}`, "<= +300 MiB", reloadedOver / MiB <= 300 ? "met" : "NOT met"]
]))
