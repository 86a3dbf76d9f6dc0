/**
 * Investigation aid for bench/sessions.ts: compares two V8 heap snapshots
 * (idle and after) by object kind and prints what grew, per session.
 *   node bench/heap-diff.ts <idle.heapsnapshot> <after.heapsnapshot> <sessions> [top]
 */
import * as fs from "node:fs"

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: ReadonlyArray<string>; readonly node_types: ReadonlyArray<unknown> } }
  readonly nodes: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

export interface KindTotal {
  count: number
  bytes: number
}

/** Self size and count per "type:name" (name shortened for strings and closures). */
export const summarize = (file: string): Map<string, KindTotal> => {
  const parsed: Snapshot = JSON.parse(fs.readFileSync(file, "utf8"))
  const fields = parsed.snapshot.meta.node_fields
  const types = parsed.snapshot.meta.node_types[0]
  const typeNames: ReadonlyArray<string> = Array.isArray(types) ? types.map(String) : []
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const totals = new Map<string, KindTotal>()
  for (let i = 0; i < parsed.nodes.length; i += width) {
    const type = typeNames[parsed.nodes[i + typeAt] ?? 0] ?? "?"
    const rawName = parsed.strings[parsed.nodes[i + nameAt] ?? 0] ?? ""
    const name = type === "string" || type === "concatenated string" || type === "sliced string" ? "" : rawName.slice(0, 60)
    const key = `${type}:${name}`
    const total = totals.get(key) ?? { count: 0, bytes: 0 }
    total.count++
    total.bytes += parsed.nodes[i + sizeAt] ?? 0
    totals.set(key, total)
  }
  return totals
}

export const diff = (idle: Map<string, KindTotal>, after: Map<string, KindTotal>) =>
  [...after].map(([key, a]) => {
    const b = idle.get(key) ?? { count: 0, bytes: 0 }
    return { key, count: a.count - b.count, bytes: a.bytes - b.bytes }
  }).sort((x, y) => y.bytes - x.bytes)

if (import.meta.main) {
  const [idleFile, afterFile, sessionsText, topText = "40"] = process.argv.slice(2)
  if (idleFile === undefined || afterFile === undefined || sessionsText === undefined) throw new Error("usage: heap-diff.ts idle after sessions [top]")
  const sessions = Number(sessionsText)
  const rows = diff(summarize(idleFile), summarize(afterFile))
  const total = rows.reduce((sum, row) => sum + row.bytes, 0)
  console.log(`total self size grown: ${(total / 2 ** 20).toFixed(1)} MiB, ${(total / sessions).toFixed(0)} B per session`)
  console.log("bytes/session  objects/session  kind")
  for (const row of rows.slice(0, Number(topText))) {
    console.log(`${(row.bytes / sessions).toFixed(0).padStart(13)}  ${(row.count / sessions).toFixed(2).padStart(15)}  ${row.key}`)
  }
}
