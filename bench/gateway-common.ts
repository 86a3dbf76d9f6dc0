/**
 * Shared pieces of the gateway benches: the fake Anthropic and the real
 * gateway (`<dist>/main.js`) each in their own process, and a small HTTP
 * client on node:http with keep-alive agents that times responses.
 * The dist directory comes from BEAMCLAW_DIST_DIR (as scripts/build.ts), default dist.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { freePort, nodeBin, repoRoot } from "./common.ts"

export const distDir = path.resolve(repoRoot, process.env["BEAMCLAW_DIST_DIR"] ?? "dist")

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------
// Processes

export const stopChild = (child: ChildProcess, timeoutMs = 5000): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill("SIGTERM")
  })

export interface FakeProcess {
  readonly url: string
  readonly pid: number
  /** The last request body the gateway sent the fake. */
  readonly lastGatewayBody: () => Promise<unknown>
  readonly counts: () => Promise<{ gateway: number; baseline: number }>
  readonly stop: () => Promise<void>
}

export const startFake = async (): Promise<FakeProcess> => {
  const child = spawn(nodeBin, [path.join(repoRoot, "bench", "gateway-fake.ts")], { stdio: ["pipe", "pipe", "inherit"] })
  const lines = readline.createInterface({ input: child.stdout! })
  const waiting: Array<(line: string) => void> = []
  lines.on("line", (line) => waiting.shift()?.(line))
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve))
  const url = await nextLine()
  const ask = async (command: string): Promise<unknown> => {
    const answer = nextLine()
    child.stdin!.write(`${command}\n`)
    return JSON.parse(await answer)
  }
  return {
    url,
    pid: child.pid ?? 0,
    lastGatewayBody: () => ask("last"),
    counts: async () => {
      const answer = await ask("count")
      const record = typeof answer === "object" && answer !== null ? answer : {}
      const gateway = "gateway" in record && typeof record.gateway === "number" ? record.gateway : NaN
      const baseline = "baseline" in record && typeof record.baseline === "number" ? record.baseline : NaN
      return { gateway, baseline }
    },
    stop: async () => {
      child.stdin!.end()
      await stopChild(child)
    }
  }
}

/**
 * BENCH_GATEWAY_ENV="NAME=value,NAME2=value2" is passed on to the gateway (for
 * experiments); BENCH_GATEWAY_NODE_ARGS="--max-semi-space-size=16 ..." adds node flags.
 */
const extraEnv = (): Record<string, string> =>
  Object.fromEntries((process.env["BENCH_GATEWAY_ENV"] ?? "").split(",").filter((pair) => pair.includes("=")).map((pair) => {
    const at = pair.indexOf("=")
    return [pair.slice(0, at), pair.slice(at + 1)]
  }))

export interface GatewayProcess {
  readonly url: string
  readonly port: number
  readonly token: string
  readonly pid: number
  readonly home: string
  /** The last 64 KiB the gateway printed. */
  readonly output: () => string
  readonly stop: () => Promise<number | null>
}

export const startGateway = async (options: {
  readonly fakeUrl: string
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: ReadonlyArray<string>
  readonly config?: Record<string, unknown>
  /** The build to run, for A/B runs of two builds side by side; default `distDir`. */
  readonly distDir?: string
  /** More environment for the gateway (BENCH_GATEWAY_ENV still wins). */
  readonly env?: Record<string, string>
}): Promise<GatewayProcess> => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-bench-gw-"))
  const port = await freePort()
  const token = `bench-${crypto.randomUUID()}`
  // JSON is YAML, so the config needs no YAML writer.
  // BENCH_GATEWAY_CONFIG='{"session":{...}}' adds top-level config sections (experiments).
  const extraConfig: Record<string, unknown> = JSON.parse(process.env["BENCH_GATEWAY_CONFIG"] ?? "{}")
  const config = { models: { providers: { anthropic: { baseUrl: options.fakeUrl, apiKey: "sk-bench" } } }, ...options.config, ...extraConfig }
  await fs.writeFile(path.join(home, "beamclaw.yaml"), JSON.stringify(config, null, 2))
  const nodeArgs = [...(options.nodeArgs ?? []), ...(process.env["BENCH_GATEWAY_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")]
  const child = spawn(nodeBin, [...nodeArgs, path.join(options.distDir ?? distDir, "main.js")], {
    cwd: home,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/tmp",
      BEAMCLAW_HOME: home,
      BEAMCLAW_PORT: String(port),
      BEAMCLAW_GATEWAY_TOKEN: token,
      ...options.env,
      ...extraEnv()
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-65536)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    const ready = await fetch(`${url}/ready`).then((r) => r.ok, () => false)
    if (ready) break
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`the gateway did not become ready:\n${output}`)
    }
    await sleep(20)
  }
  return {
    url,
    port,
    token,
    pid: child.pid ?? 0,
    home,
    output: () => output,
    stop: async () => {
      const code = await stopChild(child, 10_000)
      await fs.rm(home, { recursive: true, force: true })
      return code
    }
  }
}

// ---------------------------------------------------------------------------
// HTTP client

export const keepAliveAgent = (sockets: number) => new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })

export interface Timed {
  readonly status: number
  /** ms from just before the request was issued to the first chunk `isFirst` accepts; NaN if none did. */
  readonly firstMs: number
  /** ms until the response body ended. */
  readonly totalMs: number
  readonly body: string
}

/**
 * POSTs `body` and reads the response to its end. `isFirst` sees the text
 * received so far each time a chunk arrives, until it returns true.
 */
export const post = (
  agent: http.Agent,
  base: string,
  pathname: string,
  headers: Record<string, string>,
  body: string,
  isFirst?: (soFar: string) => boolean
): Promise<Timed> =>
  new Promise((resolve, reject) => {
    const target = new URL(pathname, base)
    const payload = Buffer.from(body)
    const started = performance.now()
    let firstMs = NaN
    const request = http.request({
      agent,
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(payload.length), ...headers }
    }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        text += chunk
        if (isFirst !== undefined && Number.isNaN(firstMs) && isFirst(text)) firstMs = performance.now() - started
      })
      response.on("end", () => resolve({ status: response.statusCode ?? 0, firstMs, totalMs: performance.now() - started, body: text }))
      response.on("error", reject)
    })
    request.on("error", reject)
    request.end(payload)
  })

/** The fake's first text delta has arrived. */
export const anthropicFirstDelta = (soFar: string): boolean => soFar.includes("event: content_block_delta")

/** An OpenAI SSE chunk with non-empty `delta.content` has arrived (the role chunk has ""). */
export const openAiFirstContent = (soFar: string): boolean => {
  for (const event of soFar.split("\n\n")) {
    if (!event.startsWith("data: {")) continue
    try {
      const chunk: unknown = JSON.parse(event.slice(6))
      if (typeof chunk !== "object" || chunk === null || !("choices" in chunk) || !Array.isArray(chunk.choices)) continue
      const choice: unknown = chunk.choices[0]
      if (typeof choice !== "object" || choice === null || !("delta" in choice)) continue
      const delta = choice.delta
      if (typeof delta === "object" && delta !== null && "content" in delta && typeof delta.content === "string" && delta.content.length > 0) return true
    } catch {
      // an event cut in the middle; the next chunk completes it
    }
  }
  return false
}

// ---------------------------------------------------------------------------
// Figures

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? NaN
}

export const fmtUs = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`
export const fmtMs2 = (ms: number): string => `${ms.toFixed(2)} ms`

/** Total CPU time (user+sys, ms) of a process so far, from /proc/<pid>/stat. */
export const cpuMs = async (pid: number): Promise<number> => {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / 100
}

// ---------------------------------------------------------------------------
// GC pauses in the gateway, to explain the tail

export interface GcEvent {
  /** Epoch ms (performance.timeOrigin + startTime) */
  readonly at: number
  readonly ms: number
  readonly kind: "minor" | "major" | "incremental" | "weakcb" | "other"
}

/**
 * Node flags that make the gateway append one line per GC pause to `file`
 * (PerformanceObserver "gc" entries, wall clock), through a preload given
 * inline, so the gateway's code is not touched.
 */
export const gcLogArgs = (file: string): ReadonlyArray<string> => {
  const preload = `
import { PerformanceObserver, constants } from "node:perf_hooks"
import { openSync, writeSync } from "node:fs"
const fd = openSync(${JSON.stringify(file)}, "w")
const kinds = { [constants.NODE_PERFORMANCE_GC_MINOR]: "minor", [constants.NODE_PERFORMANCE_GC_MAJOR]: "major", [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" }
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) writeSync(fd, (performance.timeOrigin + e.startTime).toFixed(3) + " " + e.duration.toFixed(3) + " " + (kinds[e.detail?.kind] ?? "other") + "\\n")
}).observe({ entryTypes: ["gc"] })
`
  return ["--import", `data:text/javascript,${encodeURIComponent(preload)}`]
}

export const readGcLog = async (file: string): Promise<ReadonlyArray<GcEvent>> => {
  const text = await fs.readFile(file, "utf8").catch(() => "")
  const kindOf = (kind: string | undefined): GcEvent["kind"] =>
    kind === "minor" || kind === "major" || kind === "incremental" || kind === "weakcb" ? kind : "other"
  return text.split("\n").filter((line) => line !== "").map((line) => {
    const [at = "0", ms = "0", kind] = line.split(" ")
    return { at: Number(at), ms: Number(ms), kind: kindOf(kind) }
  })
}

/** How many of the slowest requests (at or above `p`) overlapped a GC pause, and the pauses themselves. */
export const gcVersusTail = (requests: ReadonlyArray<{ readonly at: number; readonly ms: number }>, all: ReadonlyArray<GcEvent>, p = 98) => {
  // Only the pauses while the measured requests ran.
  const from = Math.min(...requests.map((r) => r.at))
  const to = Math.max(...requests.map((r) => r.at + r.ms))
  const gc = all.filter((g) => g.at + g.ms >= from && g.at <= to)
  const threshold = percentile(requests.map((r) => r.ms), p)
  const slow = requests.filter((r) => r.ms >= threshold)
  const overlapping = slow.filter((r) => gc.some((g) => g.at < r.at + r.ms && g.at + g.ms > r.at))
  const pauses = (kind: GcEvent["kind"]) => gc.filter((g) => g.kind === kind).map((g) => g.ms)
  const minor = pauses("minor")
  const major = pauses("major")
  return {
    threshold,
    slow: slow.length,
    overlapping: overlapping.length,
    minor: { count: minor.length, p50: percentile(minor, 50), max: Math.max(0, ...minor) },
    major: { count: major.length, p50: percentile(major, 50), max: Math.max(0, ...major) }
  }
}
