/** Small helpers shared by the benchmarks (plain Node, no Effect). */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

export const repoRoot = path.resolve(import.meta.dirname, "..")
/** The project's Node 24 (the `node` devDependency), never the system node. */
export const nodeBin = path.join(repoRoot, "node_modules", ".bin", "node")

export const MiB = 1024 * 1024

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

export const min = (values: ReadonlyArray<number>): number => Math.min(...values)

/** VmRSS of a process in bytes, from /proc/<pid>/status; undefined once it is gone. */
export const vmRss = (pid: number): number | undefined => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const fmtMiB = (bytes: number, digits = 1): string => `${(bytes / MiB).toFixed(digits)} MiB`
export const fmtMs = (ms: number): string => `${ms.toFixed(0)} ms`

/** A plain fixed-width table. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}
