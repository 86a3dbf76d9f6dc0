/**
 * Cold start of `node dist/main.js` (fresh empty BEAMCLAW_HOME, free port via
 * --port) to its first GET /health 200, and its RSS then and one second later,
 * beside a bare node:http server (bench/baseline-server.mjs) started the same
 * way with the same node binary. Runs are interleaved so drift in the machine
 * hits both alike. Run: `npm run build && node bench/startup.ts [runs]`.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fmtMiB, fmtMs, freePort, median, min, nodeBin, repoRoot, table, vmRss } from "./common.ts"

export interface StartupRun {
  readonly readyMs: number
  /** VmRSS when the first 200 came back. */
  readonly rssAtReady: number
  /** VmRSS one second after the first 200, once start-up work has settled. */
  readonly rssSettled: number
}

export interface StartupSummary {
  readonly name: string
  readonly runs: ReadonlyArray<StartupRun>
  readonly readyMedian: number
  readonly readyMin: number
  readonly rssMedian: number
  readonly rssMin: number
}

export interface StartupResult {
  readonly ours: StartupSummary
  readonly baseline: StartupSummary
}

const READY_TIMEOUT_MS = 20_000
const POLL_MS = 2

const healthOnce = (port: number): Promise<number> =>
  new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", () => resolve(0))
    req.setTimeout(1_000, () => req.destroy())
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()))

const stop = async (child: ChildProcess) => {
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
  await exited(child)
  clearTimeout(timer)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const startOnce = async (script: string): Promise<StartupRun> => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "beamclaw-bench-start-"))
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, BEAMCLAW_HOME: home }
  // The bench must not read the developer's config or keys.
  delete env.BEAMCLAW_CONFIG
  delete env.BEAMCLAW_PORT
  const started = performance.now()
  const child = spawn(nodeBin, [script, "--port", String(port)], { cwd: repoRoot, env, stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => { stderr += chunk.toString() })
  try {
    while (true) {
      if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode} before answering /health: ${stderr}`)
      if (performance.now() - started > READY_TIMEOUT_MS) throw new Error(`${script} did not answer /health within ${READY_TIMEOUT_MS} ms: ${stderr}`)
      if ((await healthOnce(port)) === 200) break
      await sleep(POLL_MS)
    }
    const readyMs = performance.now() - started
    const pid = child.pid ?? -1
    const rssAtReady = vmRss(pid) ?? NaN
    await sleep(1_000)
    const rssSettled = vmRss(pid) ?? NaN
    return { readyMs, rssAtReady, rssSettled }
  } finally {
    await stop(child)
    fs.rmSync(home, { recursive: true, force: true })
  }
}

const summarize = (name: string, runs: ReadonlyArray<StartupRun>): StartupSummary => ({
  name,
  runs,
  readyMedian: median(runs.map((r) => r.readyMs)),
  readyMin: min(runs.map((r) => r.readyMs)),
  rssMedian: median(runs.map((r) => r.rssSettled)),
  rssMin: min(runs.map((r) => r.rssSettled))
})

export const runStartup = async (runs = 7, log: (line: string) => void = () => {}): Promise<StartupResult> => {
  const main = path.join(repoRoot, "dist", "main.js")
  if (!fs.existsSync(main)) throw new Error("dist/main.js is missing; run `npm run build` first")
  const baselineScript = path.join(repoRoot, "bench", "baseline-server.mjs")
  // One unmeasured start of each warms the OS page cache for both binaries.
  await startOnce(main)
  await startOnce(baselineScript)
  const ours: Array<StartupRun> = []
  const baseline: Array<StartupRun> = []
  for (let i = 0; i < runs; i++) {
    // Alternate which goes first, so neither always follows the other.
    const order = i % 2 === 0 ? [true, false] : [false, true]
    for (const isOurs of order) {
      const run = await startOnce(isOurs ? main : baselineScript)
      ;(isOurs ? ours : baseline).push(run)
      log(`startup run ${i + 1}/${runs} ${isOurs ? "beamclaw" : "baseline"}: ready ${fmtMs(run.readyMs)}, rss ${fmtMiB(run.rssAtReady)} at ready, ${fmtMiB(run.rssSettled)} settled`)
    }
  }
  return { ours: summarize("beamclaw (node dist/main.js)", ours), baseline: summarize("baseline (node:http)", baseline) }
}

export const startupTable = (result: StartupResult): string => {
  const { ours, baseline } = result
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
  return table(["startup", "beamclaw", "baseline node:http", "ours/baseline"], [
    ["time to first /health 200, median", fmtMs(ours.readyMedian), fmtMs(baseline.readyMedian), ratio(ours.readyMedian, baseline.readyMedian)],
    ["time to first /health 200, min", fmtMs(ours.readyMin), fmtMs(baseline.readyMin), ratio(ours.readyMin, baseline.readyMin)],
    ["RSS 1 s after ready, median", fmtMiB(ours.rssMedian), fmtMiB(baseline.rssMedian), ratio(ours.rssMedian, baseline.rssMedian)],
    ["RSS 1 s after ready, min", fmtMiB(ours.rssMin), fmtMiB(baseline.rssMin), ratio(ours.rssMin, baseline.rssMin)],
    ["RSS at first 200, median", fmtMiB(median(ours.runs.map((r) => r.rssAtReady))), fmtMiB(median(baseline.runs.map((r) => r.rssAtReady))), ratio(median(ours.runs.map((r) => r.rssAtReady)), median(baseline.runs.map((r) => r.rssAtReady)))]
  ])
}

if (import.meta.main) {
  const runs = Number(process.argv[2] ?? 7)
  const result = await runStartup(runs, (line) => console.error(line))
  console.log(`\nnode ${process.version}, ${os.cpus().length} cores, ${runs} interleaved runs each\n`)
  console.log(startupTable(result))
}
