/**
 * Summarises a V8 .cpuprofile of the gateway (from BENCH_CPU_PROF=<dir> in
 * the gateway benches) by original source file and function, through the
 * bundle's source maps. An investigation aid, not part of `npm run bench`.
 *
 *   node bench/gateway-profile.ts <file.cpuprofile> [top=30] [skipFirstMs=0] [callersOfFunction]
 *
 * Prints: self time by source file; self time by function; "on stack"
 * time by source file (each sample counted once per file anywhere in its
 * stack, so it is inclusive and the rows overlap); and an attribution where
 * each sample goes to the innermost frame of our own code (src/), the
 * Anthropic SDK or undici, else to what its leaf frame is (so those rows add
 * up to 100%); and "on stack" time of each function in src/ (inclusive:
 * what runs inside it, synchronously; work it schedules is not counted).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { table } from "./common.ts"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface HeapNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly selfSize: number
  readonly children?: ReadonlyArray<HeapNode>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

// --- source maps (VLQ "mappings", version 3) --------------------------------

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const b64 = new Map([...B64].map((c, i) => [c, i]))

interface Segment {
  readonly column: number
  readonly source: number
  readonly line: number
}
interface SourceMap {
  readonly sources: ReadonlyArray<string>
  readonly lines: ReadonlyArray<ReadonlyArray<Segment>>
}

const decodeMappings = (mappings: string): Array<Array<Segment>> => {
  const lines: Array<Array<Segment>> = []
  let source = 0
  let line = 0
  for (const text of mappings.split(";")) {
    const segments: Array<Segment> = []
    let column = 0
    for (const part of text.split(",")) {
      if (part === "") continue
      const values: Array<number> = []
      let value = 0
      let shift = 0
      for (const char of part) {
        const digit = b64.get(char) ?? 0
        value += (digit & 31) << shift
        if (digit & 32) shift += 5
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      column += values[0] ?? 0
      if (values.length >= 4) {
        source += values[1] ?? 0
        line += values[2] ?? 0
        segments.push({ column, source, line })
      }
    }
    lines.push(segments)
  }
  return lines
}

const maps = new Map<string, SourceMap | undefined>()
const loadMap = (url: string): SourceMap | undefined => {
  if (maps.has(url)) return maps.get(url)
  let map: SourceMap | undefined
  try {
    const file = fileURLToPath(url)
    const raw: unknown = JSON.parse(fs.readFileSync(`${file}.map`, "utf8"))
    if (typeof raw === "object" && raw !== null && "sources" in raw && "mappings" in raw && Array.isArray(raw.sources) && typeof raw.mappings === "string") {
      const dir = path.dirname(file)
      const sources = raw.sources.map((s: unknown) => {
        const resolved = path.resolve(dir, String(s))
        const at = resolved.indexOf("/node_modules/")
        if (at >= 0) return resolved.slice(at + 1)
        const src = resolved.lastIndexOf("/src/")
        return src >= 0 ? resolved.slice(src + 1) : resolved
      })
      map = { sources, lines: decodeMappings(raw.mappings) }
    }
  } catch {
    map = undefined
  }
  maps.set(url, map)
  return map
}

const originalOf = (frame: CallFrame): { file: string; line: number } => {
  if (frame.url === "") return { file: `(${frame.functionName || "native"})`, line: 0 }
  if (!frame.url.startsWith("file://")) return { file: frame.url, line: frame.lineNumber + 1 }
  const map = loadMap(frame.url)
  const segments = map?.lines[frame.lineNumber]
  if (map === undefined || segments === undefined || segments.length === 0) return { file: frame.url.replace(/^file:\/\//, ""), line: frame.lineNumber + 1 }
  let best = segments[0]
  for (const segment of segments) {
    if (segment.column <= frame.columnNumber) best = segment
    else break
  }
  return { file: map.sources[best?.source ?? 0] ?? "?", line: (best?.line ?? 0) + 1 }
}

// --- summary ------------------------------------------------------------------

export const summarise = (profile: Profile, top = 30, skipFirstMs = 0, callersOf?: string, unit = "ms"): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const where = new Map<number, { file: string; line: number }>()
  const locate = (id: number) => {
    let found = where.get(id)
    if (found === undefined) {
      const node = byId.get(id)
      found = node === undefined ? { file: "?", line: 0 } : originalOf(node.callFrame)
      where.set(id, found)
    }
    return found
  }
  const selfFile = new Map<string, number>()
  const selfFn = new Map<string, number>()
  const stackFile = new Map<string, number>()
  const stackSrcFn = new Map<string, number>()
  const attributed = new Map<string, number>()
  const stacks = new Map<string, number>()
  const ownerOf = (file: string): string | undefined =>
    file.startsWith("src/") ? file
    : file.includes("@anthropic-ai/sdk") ? "Anthropic SDK (node_modules/@anthropic-ai/sdk)"
    : file.includes("undici") ? "undici (the SDK's fetch)"
    : undefined
  const leafKind = (file: string): string =>
    file.startsWith("node_modules/effect/") ? "effect runtime, no src/ frame on the stack"
    : file.startsWith("node_modules/@effect/platform-node") ? "@effect/platform-node (HTTP server glue)"
    : file === "node:_http_server" || file === "node:_http_common" || file === "node:_http_outgoing" || file === "node:_http_incoming" || file === "node:net" || file.startsWith("node:internal/stream") || file === "(writev)" || file === "(writeBuffer)" || file === "(writeString)" || file === "(writeUtf8String)" || file === "(parse)"
    ? "node http/net/streams (no src/ frame)"
    : file.startsWith("(") ? file
    : file.startsWith("node:") ? "other node internals (no src/ frame)"
    : file
  let total = 0
  let idle = 0
  let clock = 0
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms)
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    clock += dt
    if (clock < skipFirstMs) continue
    const id = profile.samples[i] ?? 0
    const node = byId.get(id)
    if (node === undefined) continue
    if (node.callFrame.functionName === "(idle)") {
      idle += dt
      continue
    }
    total += dt
    const at = locate(id)
    add(selfFile, at.file, dt)
    add(selfFn, `${node.callFrame.functionName || "(anonymous)"} ${at.file}:${at.line}`, dt)
    const seen = new Set<string>()
    const seenFn = new Set<string>()
    let owner: string | undefined
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const place = locate(cursor)
      const file = place.file
      owner ??= ownerOf(file)
      if (!seen.has(file)) {
        seen.add(file)
        add(stackFile, file, dt)
      }
      if (file.startsWith("src/")) {
        const fn = `${byId.get(cursor)?.callFrame.functionName || "(anonymous)"} ${file}:${place.line}`
        if (!seenFn.has(fn)) {
          seenFn.add(fn)
          add(stackSrcFn, fn, dt)
        }
      }
    }
    add(attributed, owner ?? leafKind(at.file), dt)
    if (callersOf !== undefined && node.callFrame.functionName === callersOf) {
      const frames: Array<string> = []
      for (let cursor = parent.get(id); cursor !== undefined && frames.length < 6; cursor = parent.get(cursor)) {
        const frame = byId.get(cursor)?.callFrame
        const place = locate(cursor)
        if (frame === undefined || place.file.startsWith("node_modules/effect/") || place.file.startsWith("node:internal/process")) continue
        frames.push(`${frame.functionName || "(anonymous)"} ${place.file}:${place.line}`)
      }
      add(stacks, frames.join(" < "), dt)
    }
  }
  const rows = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, ms]) => [key, `${ms.toFixed(0)} ${unit}`, `${((100 * ms) / total).toFixed(1)}%`])
  return [
    unit === "ms" ? `busy ${total.toFixed(0)} ms, idle ${idle.toFixed(0)} ms (after skipping the first ${skipFirstMs} ms)` : `total ${total.toFixed(0)} ${unit}`,
    "",
    table(["self time by file", unit, "% of total"], rows(selfFile)),
    "",
    table(["self time by function", unit, "% of total"], rows(selfFn)),
    "",
    table(["on stack, by file", unit, "% of total"], rows(stackFile)),
    "",
    table(["attributed (innermost src/, SDK or undici frame, else the leaf)", unit, "% of total"], rows(attributed)),
    "",
    table(["on stack, by src/ function (inclusive; rows overlap)", unit, "% of total"], rows(stackSrcFn)),
    ...(callersOf === undefined ? [] : ["", table([`callers of ${callersOf} (innermost first, effect internals skipped)`, unit, "% of total"], rows(stacks))])
  ].join("\n")
}

if (import.meta.main) {
  const [file, topText = "30", skipText = "0", callersOf] = process.argv.slice(2)
  if (file === undefined) throw new Error("usage: node bench/gateway-profile.ts <file.cpuprofile|file.heapprofile> [top] [skipFirstMs] [callersOf]")
  // JSON.parse's any, typed as what V8 writes (a .cpuprofile or a .heapprofile), as before.
  const raw: Profile | { readonly head: HeapNode } = JSON.parse(fs.readFileSync(file, "utf8"))
  if ("head" in raw) {
    // A sampling heap profile (.heapprofile): bytes by allocation site instead of time.
    const nodes: Array<ProfileNode> = []
    const samples: Array<number> = []
    const sizes: Array<number> = []
    const walk = (node: HeapNode): number => {
      const children = (node.children ?? []).map(walk)
      nodes.push({ id: node.id, callFrame: node.callFrame, children })
      if (node.selfSize > 0) {
        samples.push(node.id)
        sizes.push(node.selfSize)
      }
      return node.id
    }
    walk(raw.head)
    console.log(summarise({ nodes, samples, timeDeltas: sizes }, Number(topText), 0, callersOf, "KB"))
  } else {
    console.log(summarise(raw, Number(topText), Number(skipText), callersOf))
  }
}
