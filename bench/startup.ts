/**
 * Cold start of `node dist/main.js` (fresh empty BEAMCLAW_HOME, free port via
 * --port) to its first GET /health 200, and its RSS then and one second later,
 * beside a bare node:http server (bench/baseline-server.mjs) started the same
 * way with the same node binary. Runs are interleaved so drift in the machine
 * hits both alike. Run: `npm run build && node bench/startup.ts [runs] [otherDistDir]`.
 * The build measured is BEAMCLAW_DIST_DIR (default dist), as for the gateway
 * benches. An `otherDistDir` (say, a copy of an older build) is measured in the
 * same interleaved rounds, for an A/B on a shared machine.
 */
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fmtMiB, fmtMs, freePort, median, min, nodeBin, repoRoot, table, vmRss } from "./common.ts"

export interface StartupRun {
  readonly readyMs: number
  /** Time to the first GET /ready 200: every subsystem up (the gateway answers /health before that). */
  readonly fullyReadyMs: number
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
  /** The comparison build, when one was given. */
  readonly other?: StartupSummary | undefined
}

const READY_TIMEOUT_MS = 20_000
const POLL_MS = 2

const probeOnce = (port: number, probe: "/health" | "/ready"): Promise<number> =>
  new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: probe, agent: false }, (res) => {
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
      if ((await probeOnce(port, "/health")) === 200) break
      await sleep(POLL_MS)
    }
    const readyMs = performance.now() - started
    const pid = child.pid ?? -1
    const rssAtReady = vmRss(pid) ?? NaN
    while ((await probeOnce(port, "/ready")) !== 200) {
      if (performance.now() - started > READY_TIMEOUT_MS) throw new Error(`${script} did not answer /ready within ${READY_TIMEOUT_MS} ms: ${stderr}`)
      await sleep(POLL_MS)
    }
    const fullyReadyMs = performance.now() - started
    await sleep(1_000)
    const rssSettled = vmRss(pid) ?? NaN
    return { readyMs, fullyReadyMs, rssAtReady, rssSettled }
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

/** The dist directory the benches use: BEAMCLAW_DIST_DIR, as scripts/build.ts writes it. */
const distDir = path.resolve(repoRoot, process.env["BEAMCLAW_DIST_DIR"] ?? "dist")

const mainOf = (dir: string): string => {
  const main = path.join(path.resolve(repoRoot, dir), "main.js")
  if (!fs.existsSync(main)) throw new Error(`${main} is missing; run \`npm run build\` first`)
  return main
}

export const runStartup = async (runs = 7, log: (line: string) => void = () => {}, otherDist?: string): Promise<StartupResult> => {
  const main = mainOf(distDir)
  const other = otherDist === undefined ? undefined : mainOf(otherDist)
  const baselineScript = path.join(repoRoot, "bench", "baseline-server.mjs")
  type Kind = "ours" | "other" | "baseline"
  const scripts: Record<Kind, string | undefined> = { ours: main, other, baseline: baselineScript }
  const kinds: ReadonlyArray<Kind> = other === undefined ? ["ours", "baseline"] : ["ours", "other", "baseline"]
  // One unmeasured start of each warms the OS page cache and V8's compile cache for each.
  for (const kind of kinds) await startOnce(scripts[kind] ?? baselineScript)
  const results: Record<Kind, Array<StartupRun>> = { ours: [], other: [], baseline: [] }
  for (let i = 0; i < runs; i++) {
    // Rotate which goes first, so none always follows another.
    const order = kinds.map((_, j) => kinds[(i + j) % kinds.length] ?? "baseline")
    for (const kind of order) {
      const run = await startOnce(scripts[kind] ?? baselineScript)
      results[kind].push(run)
      log(`startup run ${i + 1}/${runs} ${kind === "ours" ? "beamclaw" : kind === "other" ? "other build" : "baseline"}: /health ${fmtMs(run.readyMs)}, /ready ${fmtMs(run.fullyReadyMs)}, rss ${fmtMiB(run.rssAtReady)} at ready, ${fmtMiB(run.rssSettled)} settled`)
    }
  }
  return {
    ours: summarize(`beamclaw (${path.relative(repoRoot, main)})`, results.ours),
    baseline: summarize("baseline (node:http)", results.baseline),
    other: other === undefined ? undefined : summarize(`other build (${other})`, results.other)
  }
}

export const startupTable = (result: StartupResult): string => {
  const { ours, baseline, other } = result
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
  const atReady = (s: StartupSummary) => median(s.runs.map((r) => r.rssAtReady))
  const rows = (name: string, pick: (s: StartupSummary) => number, fmt: (n: number) => string) =>
    other === undefined
      ? [name, fmt(pick(ours)), fmt(pick(baseline)), ratio(pick(ours), pick(baseline))]
      : [name, fmt(pick(ours)), fmt(pick(baseline)), ratio(pick(ours), pick(baseline)), fmt(pick(other)), ratio(pick(other), pick(baseline))]
  const header = other === undefined
    ? ["startup", "beamclaw", "baseline node:http", "ours/baseline"]
    : ["startup", "beamclaw", "baseline node:http", "ours/baseline", "other build", "other/baseline"]
  return table(header, [
    rows("time to first /health 200, median", (s) => s.readyMedian, fmtMs),
    rows("time to first /health 200, min", (s) => s.readyMin, fmtMs),
    rows("time to first /ready 200, median", (s) => median(s.runs.map((r) => r.fullyReadyMs)), fmtMs),
    rows("RSS 1 s after ready, median", (s) => s.rssMedian, fmtMiB),
    rows("RSS 1 s after ready, min", (s) => s.rssMin, fmtMiB),
    rows("RSS at first 200, median", atReady, fmtMiB)
  ])
}

if (import.meta.main) {
  const runs = Number(process.argv[2] ?? 7)
  const result = await runStartup(runs, (line) => console.error(line), process.argv[3])
  console.log(`\nnode ${process.version}, ${os.cpus().length} cores, ${runs} interleaved runs each, dist ${path.relative(repoRoot, distDir) || "."}${result.other === undefined ? "" : ` vs ${process.argv[3]}`}\n`)
  console.log(startupTable(result))
}
