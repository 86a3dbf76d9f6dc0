/**
 * Memory of many sessions, each figure beside the idle process of the same
 * run (the measured process before it created any session). Every
 * measurement runs in its own child (`node --expose-gc
 * bench/sessions-worker.ts`) against test/support/FakeAnthropic.ts in a third
 * process, with a fresh BEAMCLAW_HOME in a temp dir that is deleted after.
 *   node bench/sessions.ts [liveCount] [passivatedCount]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fmtMiB, MiB, nodeBin, repoRoot, table } from "./common.ts"
import type { WorkerResult } from "./sessions-worker.ts"

export interface SessionsResult {
  readonly live: WorkerResult
  readonly passivated: WorkerResult
  /** The passivated home loaded by a fresh process: the index as read back from disk. */
  readonly reloaded: WorkerResult
  /** Fewer sessions, passivated by real turns, to check that the store-made ones cost the same. */
  readonly passivatedByTurns: WorkerResult
}

const WORKER_TIMEOUT_MS = 10 * 60_000

const startFake = async (): Promise<{ readonly url: string; readonly close: () => Promise<void> }> => {
  const child = spawn(nodeBin, [path.join(repoRoot, "bench", "fake-anthropic.ts")], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] })
  const lines = readline.createInterface({ input: child.stdout })
  const url = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve)
    child.once("exit", (code) => reject(new Error(`the fake Anthropic server exited with ${code}`)))
  })
  return {
    url,
    close: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
    })
  }
}

const makeHome = (fakeUrl: string, passivateAfterSeconds: number): string => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "beamclaw-bench-sessions-"))
  fs.writeFileSync(path.join(home, "beamclaw.yaml"), [
    "models:",
    "  providers:",
    "    anthropic:",
    `      baseUrl: ${fakeUrl}`,
    "      apiKey: x",
    "session:",
    "  idle:",
    `    passivateAfterSeconds: ${passivateAfterSeconds}`,
    "logging:",
    "  level: warn",
    ""
  ].join("\n"))
  return home
}

const runWorker = (home: string, args: ReadonlyArray<string>, fakeUrl: string, log: (line: string) => void): Promise<WorkerResult> =>
  new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BEAMCLAW_HOME: home, ANTHROPIC_BASE_URL: fakeUrl, ANTHROPIC_API_KEY: "x" }
    delete env.BEAMCLAW_CONFIG
    // BENCH_WORKER_NODE_ARGS="--max-semi-space-size=16 ..." starts the measured process with more node flags (experiments).
    const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "")
    const child = spawn(nodeBin, [...nodeArgs, "--expose-gc", path.join(repoRoot, "bench", "sessions-worker.ts"), ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString() })
    readline.createInterface({ input: child.stderr }).on("line", (line) => {
      stderr += `${line}\n`
      log(line)
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), WORKER_TIMEOUT_MS)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      const line = stdout.trim().split("\n").at(-1) ?? ""
      if (code !== 0 || line === "") return reject(new Error(`sessions worker ${args.join(" ")} failed (${code ?? signal}): ${stderr.slice(-2000)}`))
      resolve(JSON.parse(line))
    })
  })

/** Only the live case: `liveCount` sessions, one turn each, none passivated. */
export const runLive = async (liveCount = 10_000, log: (line: string) => void = () => {}): Promise<WorkerResult> => {
  const fake = await startFake()
  const home = makeHome(fake.url, 86_400)
  try {
    return await runWorker(home, ["live", String(liveCount), "50"], fake.url, log)
  } finally {
    await fake.close()
    fs.rmSync(home, { recursive: true, force: true })
  }
}

export const runSessions = async (liveCount = 10_000, passivatedCount = 100_000, log: (line: string) => void = () => {}): Promise<SessionsResult> => {
  const fake = await startFake()
  const homes: Array<string> = []
  const home = (seconds: number) => {
    const dir = makeHome(fake.url, seconds)
    homes.push(dir)
    return dir
  }
  try {
    const live = await runWorker(home(86_400), ["live", String(liveCount), "50"], fake.url, log)
    const passivatedHome = home(1)
    const passivated = await runWorker(passivatedHome, ["passivated-store", String(passivatedCount), "50"], fake.url, log)
    const reloaded = await runWorker(passivatedHome, ["reload"], fake.url, log)
    const passivatedByTurns = await runWorker(home(1), ["passivated-turns", "2000", "50"], fake.url, log)
    return { live, passivated, reloaded, passivatedByTurns }
  } finally {
    await fake.close()
    for (const dir of homes) fs.rmSync(dir, { recursive: true, force: true })
  }
}

const perSession = (bytes: number, count: number) => `${(bytes / count / 1024).toFixed(1)} KiB`

export const sessionsTable = (result: SessionsResult): string => {
  const row = (label: string, r: WorkerResult, count: number, goal: string) => [
    label,
    fmtMiB(r.idle.rss),
    fmtMiB(r.after.rss),
    fmtMiB(r.after.rss - r.idle.rss),
    fmtMiB(r.after.heapUsed - r.idle.heapUsed),
    perSession(r.after.rss - r.idle.rss, count),
    perSession(r.after.heapUsed - r.idle.heapUsed, count),
    goal
  ]
  const { live, passivated, reloaded, passivatedByTurns } = result
  return table(
    ["sessions", "idle RSS", "RSS after", "RSS over idle", "heapUsed over idle", "RSS/session", "heap/session", "goal (RSS over idle)"],
    [
      row(`${live.count} live`, live, live.count, `<= 150 MiB: ${(live.after.rss - live.idle.rss) / MiB <= 150 ? "met" : "NOT met"}`),
      row(`${passivated.count} passivated (made via SessionStore)`, passivated, passivated.count, `<= 300 MiB: ${(passivated.after.rss - passivated.idle.rss) / MiB <= 300 ? "met" : "NOT met"}`),
      row(`${reloaded.indexEntries} passivated, index reloaded by a fresh process`, reloaded, reloaded.indexEntries, `<= 300 MiB: ${(reloaded.after.rss - reloaded.idle.rss) / MiB <= 300 ? "met" : "NOT met"}`),
      row(`${passivatedByTurns.count} passivated by real turns (check)`, passivatedByTurns, passivatedByTurns.count, "-")
    ]
  )
}

export const sessionsDetails = (result: SessionsResult): string => workerDetails([result.live, result.passivated, result.reloaded, result.passivatedByTurns])

export const workerDetails = (results: ReadonlyArray<WorkerResult>): string =>
  results.map((r) => {
    const span = (pick: (m: WorkerResult["idle"]) => number) => `${fmtMiB(pick(r.idle))} -> ${fmtMiB(pick(r.after))}`
    const pooled = (m: WorkerResult["idle"]) => Math.max(0, (m.resident.v8Pages ?? 0) - m.v8Physical)
    return `${r.mode} ${r.count}: created in ${(r.createMs / 1000).toFixed(1)} s (${(r.createCpuMs / 1000).toFixed(1)} s CPU); live after ${r.liveAfter}, passivations ${r.passivations}` +
      `${r.waitForPassivationMs === undefined ? "" : ` (waited ${(r.waitForPassivationMs / 1000).toFixed(1)} s)`}; index ${r.indexEntries} entries, sessions.json ${fmtMiB(r.indexFileBytes)}\n` +
      `  V8: heapTotal ${span((m) => m.heapTotal)}, new space committed ${span((m) => m.spacesCommitted.new_space ?? 0)}, ` +
      `heap pages resident ${span((m) => m.resident.v8Pages ?? 0)} of which freed pages V8 keeps pooled ${span(pooled)}\n` +
      `  malloc: brk heap ${span((m) => m.resident.mallocBrk ?? 0)}, thread arenas ${span((m) => m.resident.mallocArenas ?? 0)}; other anonymous ${span((m) => m.resident.anonOther ?? 0)}` +
      (r.notes.length > 0 ? `\n  ${r.notes.join("\n  ")}` : "")
  }).join("\n")

if (import.meta.main && process.argv[2] === "live") {
  const live = await runLive(Number(process.argv[3] ?? 10_000), (line) => console.error(line))
  const over = live.after.rss - live.idle.rss
  console.log(`\nnode ${process.version}, ${os.cpus().length} cores\n`)
  console.log(`${live.count} live: idle RSS ${fmtMiB(live.idle.rss)}, after ${fmtMiB(live.after.rss)}, over idle ${fmtMiB(over)} ` +
    `(heapUsed ${fmtMiB(live.after.heapUsed - live.idle.heapUsed)} over idle); goal <= 150 MiB: ${over / MiB <= 150 ? "met" : "NOT met"}`)
  console.log(workerDetails([live]))
} else if (import.meta.main) {
  const liveCount = Number(process.argv[2] ?? 10_000)
  const passivatedCount = Number(process.argv[3] ?? 100_000)
  const result = await runSessions(liveCount, passivatedCount, (line) => console.error(line))
  console.log(`\nnode ${process.version}, ${os.cpus().length} cores\n`)
  console.log(sessionsTable(result))
  console.log(`\n${sessionsDetails(result)}`)
}
