/**
 * Runs the built `dist/main.js` as a user would, with its own environment,
 * and collects what it prints.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

export const MAIN = path.resolve(import.meta.dirname, "../..", process.env["BEAMCLAW_DIST_DIR"] ?? "dist", "main.js")

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export const cleanEnv = (env: Record<string, string>): NodeJS.ProcessEnv => {
  const base: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp" }
  return { ...base, ...env }
}

export const start = (args: ReadonlyArray<string>, env: Record<string, string>): { readonly child: ChildProcess; readonly result: Promise<RunResult>; readonly output: () => { stdout: string; stderr: string } } => {
  const child = spawn(process.execPath, [MAIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => { stdout += chunk.toString("utf8") })
  child.stderr?.on("data", (chunk: Buffer) => { stderr += chunk.toString("utf8") })
  const result = new Promise<RunResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, result, output: () => ({ stdout, stderr }) }
}

export const run = (args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 20_000): Promise<RunResult> => {
  const started = start(args, env)
  const timer = setTimeout(() => started.child.kill("SIGKILL"), timeoutMs)
  return started.result.finally(() => clearTimeout(timer))
}

export const waitFor = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export const freePort = async (): Promise<number> => {
  const net = await import("node:net")
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  })
}
