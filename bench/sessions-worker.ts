/**
 * The measured process of bench/sessions.ts; run with --expose-gc. It sets the
 * heap up as src/main.ts does for the gateway (entry/heap.ts), builds
 * `App.core()` in-process from BEAMCLAW_HOME (the parent writes its
 * beamclaw.yaml, pointing the anthropic provider at the fake), measures the
 * idle process, creates sessions, measures again and prints one JSON line.
 * After turns, each measurement waits for the gateway's own quiet-time look
 * at the heap (runtime/HeapReclaim.ts), as a gateway settles after work.
 * Investigation knobs (environment): BENCH_V8_FLAGS, BENCH_SMAPS_TOP,
 * BENCH_SMAPS_HIST, BENCH_SETTLE_MS, BENCH_HEAP_SNAPSHOT, BENCH_ALLOC_PROFILE
 * (each described where it is used).
 *
 *   node --expose-gc bench/sessions-worker.ts live <count> <concurrency>
 *   node --expose-gc bench/sessions-worker.ts passivated-turns <count> <concurrency>
 *   node --expose-gc bench/sessions-worker.ts passivated-store <count> <concurrency>
 *   node --expose-gc bench/sessions-worker.ts reload
 */
import * as fs from "node:fs"
import * as inspector from "node:inspector/promises"
import * as path from "node:path"
import * as v8 from "node:v8"
import { Effect, Stream } from "effect"
import { tuneHeap } from "../src/entry/heap.ts"
import * as App from "../src/runtime/App.ts"
import { HeapReclaim } from "../src/runtime/HeapReclaim.ts"
import { reclaimNow } from "../src/runtime/LastResortGc.ts"
import { SessionStore } from "../src/session/SessionStore.ts"
import { Sessions } from "../src/session/Sessions.ts"
import type * as Transcript from "../src/session/Transcript.ts"

export interface Memory {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
  /** Bytes of live objects per V8 heap space, after GC. */
  readonly spaces: Readonly<Record<string, number>>
  /** Bytes V8 has committed per heap space (used or not). */
  readonly spacesCommitted: Readonly<Record<string, number>>
  /** Resident bytes by mapping kind, from /proc/self/smaps (see residentByKind). */
  readonly resident: Readonly<Record<string, number>>
  /** V8's committed heap memory (v8.getHeapStatistics().total_physical_size); pooled free pages are not in it. */
  readonly v8Physical: number
  /** V8's malloc'ed memory outside the heap (compiler zones etc.) now, and its peak. */
  readonly v8Malloced: number
  readonly v8PeakMalloced: number
}

export interface WorkerResult {
  readonly mode: string
  readonly count: number
  readonly concurrency: number
  readonly idle: Memory
  readonly after: Memory
  readonly createMs: number
  /** CPU time (user + system, all threads) the process spent creating the sessions. */
  readonly createCpuMs: number
  readonly liveAfter: number
  readonly passivations: number
  readonly indexEntries: number
  readonly indexFileBytes: number
  readonly waitForPassivationMs?: number
  readonly notes: ReadonlyArray<string>
}

const gcNow: () => void = typeof globalThis.gc === "function" ? globalThis.gc : () => {
  throw new Error("run with --expose-gc")
}

/**
 * Resident memory by mapping, from /proc/self/smaps:
 * - mallocBrk: glibc's main arena (the brk heap);
 * - mallocArenas: glibc's thread arenas (anonymous rw mappings starting on a
 *   64 MiB boundary, where glibc reserves each arena heap);
 * - v8Pages: anonymous rw mappings of exactly 256 KiB, V8's regular heap
 *   pages (without pointer compression each page is its own mapping). They
 *   include pages V8 has freed but keeps in its page pool, which
 *   v8.getHeapStatistics() no longer counts (see `v8Physical`);
 * - anonOther: other anonymous memory (large-object pages, stacks, ...);
 * - file: code and data files.
 */
const residentByKind = (): Record<string, number> => {
  const out: Record<string, number> = { mallocBrk: 0, mallocArenas: 0, v8Pages: 0, anonOther: 0, file: 0 }
  let kind = "anonOther"
  for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line)
    if (header !== null) {
      const start = parseInt(header[1] ?? "0", 16)
      const size = parseInt(header[2] ?? "0", 16) - start
      const perms = header[3] ?? ""
      const name = header[4] ?? ""
      kind = name === "[heap]"
        ? "mallocBrk"
        : name.startsWith("/")
        ? "file"
        : perms.startsWith("rw-") && size === 256 * 1024
        ? "v8Pages"
        : perms.startsWith("rw-") && start % (64 * 1024 * 1024) === 0
        ? "mallocArenas"
        : "anonOther"
      continue
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line)
    if (rss !== null) out[kind] = (out[kind] ?? 0) + Number(rss[1]) * 1024
  }
  return out
}

/** Investigation aid (BENCH_SMAPS_HIST=1): resident anonymous memory grouped by mapping size, plus V8's own totals. */
const anonHistogram = (label: string) => {
  if (process.env.BENCH_SMAPS_HIST === undefined) return
  const buckets = new Map<string, { count: number; rss: number; size: number; lazyFree: number }>()
  let key = ""
  for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line)
    if (header !== null) {
      const start = parseInt(header[1] ?? "0", 16)
      const size = parseInt(header[2] ?? "0", 16) - start
      const name = header[4] ?? ""
      const aligned64 = start % (64 * 1024 * 1024) === 0
      key = name !== "" ? (name.startsWith("/") ? "file" : name) : `${header[3]} ${aligned64 ? "64MiB-aligned " : ""}${size <= 262144 ? String(size / 1024) + "K" : size <= 1048576 ? "<=1M" : size <= 16 * 1048576 ? "<=16M" : ">16M"}`
      const b = buckets.get(key) ?? { count: 0, rss: 0, size: 0, lazyFree: 0 }
      b.count++
      b.size += size
      buckets.set(key, b)
      continue
    }
    const field = /^(Rss|LazyFree):\s+(\d+) kB$/.exec(line)
    const b = buckets.get(key)
    if (field !== null && b !== undefined) {
      if (field[1] === "Rss") b.rss += Number(field[2]) * 1024
      else b.lazyFree += Number(field[2]) * 1024
    }
  }
  const rows = [...buckets].filter(([, b]) => b.rss > 512 * 1024 || b.size > 16 * 2 ** 20).sort((a, b) => b[1].rss - a[1].rss)
  for (const [k, b] of rows) progress(`${label} smaps ${k}: ${b.count} mappings, rss ${(b.rss / 2 ** 20).toFixed(1)} MiB (lazy free ${(b.lazyFree / 2 ** 20).toFixed(1)}) of ${(b.size / 2 ** 20).toFixed(1)} MiB`)
  const h = v8.getHeapStatistics()
  progress(`${label} v8 total_heap ${(h.total_heap_size / 2 ** 20).toFixed(1)} physical ${(h.total_physical_size / 2 ** 20).toFixed(1)} malloced ${(h.malloced_memory / 2 ** 20).toFixed(1)} peak_malloced ${(h.peak_malloced_memory / 2 ** 20).toFixed(1)} external ${(h.external_memory / 2 ** 20).toFixed(1)}`)
}

/** Full GCs until the heap stops shrinking, then the numbers. */
const measure = async (): Promise<Memory> => {
  let last = Infinity
  for (let i = 0; i < 10; i++) {
    gcNow()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (last - used < 64 * 1024) break
    last = used
  }
  const usage = process.memoryUsage()
  const spaces: Record<string, number> = {}
  const spacesCommitted: Record<string, number> = {}
  for (const space of v8.getHeapSpaceStatistics()) {
    spaces[space.space_name] = space.space_used_size
    spacesCommitted[space.space_name] = space.physical_space_size
  }
  const heap = v8.getHeapStatistics()
  return {
    resident: residentByKind(), v8Physical: heap.total_physical_size, v8Malloced: heap.malloced_memory, v8PeakMalloced: heap.peak_malloced_memory,
    rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external, arrayBuffers: usage.arrayBuffers, spaces, spacesCommitted
  }
}

const [mode = "live", countText = "0", concurrencyText = "50"] = process.argv.slice(2)
const count = Number(countText)
const concurrency = Number(concurrencyText)
const home = process.env.BEAMCLAW_HOME ?? ""
if (home === "") throw new Error("BEAMCLAW_HOME must be set")
const progress = (line: string) => process.stderr.write(`[sessions ${mode}] ${line}\n`)

/** Investigation aid: BENCH_HEAP_SNAPSHOT=<prefix> writes <prefix>-idle/-after.heapsnapshot (perturbs the figures). */
const snapshot = (label: string) => {
  const prefix = process.env.BENCH_HEAP_SNAPSHOT
  if (prefix === undefined) return
  progress(`heap snapshot written to ${v8.writeHeapSnapshot(`${prefix}-${label}.heapsnapshot`)}`)
}

/**
 * Investigation aid: BENCH_ALLOC_PROFILE=<file> samples every allocation of
 * the measured phase, garbage included, and writes a .heapprofile (Chrome
 * DevTools format) to <file>; slows the turns down. BENCH_ALLOC_PROFILE_MINOR=0
 * leaves out what died young, so it shows what was promoted to old space.
 */
const allocationProfile = async () => {
  const file = process.env.BENCH_ALLOC_PROFILE
  if (file === undefined) return async () => {}
  const session = new inspector.Session()
  session.connect()
  await session.post("HeapProfiler.startSampling", { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.BENCH_ALLOC_PROFILE_MINOR !== "0" })
  return async () => {
    const { profile } = await session.post("HeapProfiler.stopSampling")
    fs.writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
    progress(`allocation profile written to ${file}`)
  }
}

const keyOf = (i: number) => `agent:main:bench:${i}`

const program = Effect.gen(function*() {
  const sessions = yield* Sessions
  const store = yield* SessionStore
  const reclaim = yield* HeapReclaim
  /** Waits for HeapReclaim's look at the heap after the turns just run (it reclaims if the heap grew). */
  const settle = (checksBefore: number) =>
    Effect.gen(function*() {
      const started = Date.now()
      while ((yield* reclaim.stats).checks <= checksBefore) {
        if (Date.now() - started > 60_000) return yield* Effect.die(new Error("HeapReclaim did not look at the heap within 60 s"))
        yield* Effect.sleep("100 millis")
      }
      const stats = yield* reclaim.stats
      if (stats.last !== undefined) progress(`heap reclaims ${stats.reclaims}: last ${(stats.last.beforeBytes / 2 ** 20).toFixed(1)} -> ${(stats.last.afterBytes / 2 ** 20).toFixed(1)} MiB in ${stats.last.ms.toFixed(0)} ms, ${((Date.now() - started) / 1000).toFixed(1)} s after the turns`)
      return stats
    })
  const turn = (key: string) => sessions.send(key, { runId: crypto.randomUUID(), text: `hello ${key}` }).pipe(Stream.runDrain)
  const notes: Array<string> = []

  const runTurns = (n: number) =>
    Effect.gen(function*() {
      let done = 0
      const started = Date.now()
      yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
        turn(keyOf(i)).pipe(Effect.tap(() =>
          Effect.sync(() => {
            done++
            if (done % 1000 === 0) progress(`${done}/${n} turns, ${((Date.now() - started) / 1000).toFixed(1)} s`)
          })
        )), { concurrency, discard: true })
    })

  let idle: Memory
  let createMs = 0
  let createCpuMs = 0
  let waitForPassivationMs: number | undefined
  if (mode === "reload") {
    // Idle before the index is read: the index is loaded lazily on first use.
    idle = yield* Effect.promise(measure)
    const started = Date.now()
    yield* turn("agent:main:bench:reload-probe")
    createMs = Date.now() - started
    notes.push("idle measured before the index was loaded; the delta includes one turn's one-time code loading (Anthropic SDK etc.)")
  } else {
    // One warm-up turn loads the provider SDK and JIT-compiles the turn path,
    // so the idle figure holds the one-time code and the delta is per session.
    yield* turn("agent:main:bench:warmup")
    yield* settle((yield* reclaim.stats).checks)
    // The idle figure is taken with the heap given back too (the gateway does so only once it has grown by
    // 32 MiB), so that the figure after, taken once the gateway gave its heap back, is compared like for like.
    reclaimNow()
    idle = yield* Effect.promise(measure)
    anonHistogram("idle")
    snapshot("idle")
    const started = Date.now()
    const cpuBefore = process.cpuUsage()
    if (mode === "live" || mode === "passivated-turns") {
      const stopProfile = yield* Effect.promise(allocationProfile)
      const checksBefore = (yield* reclaim.stats).checks
      yield* runTurns(count)
      yield* Effect.promise(stopProfile)
      createMs = Date.now() - started
      const cpu = process.cpuUsage(cpuBefore)
      createCpuMs = (cpu.user + cpu.system) / 1000
      const settled = yield* settle(checksBefore)
      notes.push(`measured after the gateway's quiet-time look at the heap: ${settled.reclaims} memory-reducing GC(s)${settled.last === undefined ? "" : `, the last ${(settled.last.beforeBytes / 2 ** 20).toFixed(0)} -> ${(settled.last.afterBytes / 2 ** 20).toFixed(0)} MiB committed in ${settled.last.ms.toFixed(0)} ms`}`)
    } else if (mode === "passivated-store") {
      // Every session a copy of what a real turn left on disk and in the index.
      const template = yield* store.getEntry("agent:main:bench:warmup")
      if (template === undefined) return yield* Effect.die(new Error("the warm-up turn left no index entry"))
      const loaded = yield* store.loadTranscript(template.agentId, template.sessionId, "agent:main:bench:warmup")
      const entries: ReadonlyArray<Transcript.Entry> = loaded.entries
      let done = 0
      yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const key = keyOf(i)
          const sessionId = crypto.randomUUID()
          const now = Date.now()
          yield* store.createTranscript(template.agentId, { ...loaded.header, id: sessionId, key, timestamp: new Date(now).toISOString() })
          yield* store.append(template.agentId, sessionId, entries)
          // A JSON round trip gives each entry its own strings, as a real turn's entry has.
          yield* store.putEntry(key, { ...JSON.parse(JSON.stringify(template)), sessionId, updatedAt: now, sessionStartedAt: now })
          done++
          if (done % 10_000 === 0) progress(`${done}/${count} sessions written, ${((Date.now() - started) / 1000).toFixed(1)} s`)
        }), { concurrency, discard: true })
      notes.push(`created through SessionStore (createTranscript/append/putEntry), each a copy of the warm-up turn's transcript (${entries.length} entries) and index entry`)
    }
    if (mode === "passivated-store") {
      createMs = Date.now() - started
      const cpu = process.cpuUsage(cpuBefore)
      createCpuMs = (cpu.user + cpu.system) / 1000
    }
    if (mode === "passivated-turns") {
      const waitStarted = Date.now()
      while ((yield* sessions.stats).live > 0) {
        if (Date.now() - waitStarted > 180_000) {
          notes.push("gave up waiting for passivation after 180 s")
          break
        }
        yield* Effect.sleep("200 millis")
      }
      waitForPassivationMs = Date.now() - waitStarted
    }
  }
  yield* store.flush
  const after = yield* Effect.promise(measure)
  const stats = yield* sessions.stats
  const indexEntries = (yield* store.listEntries("main")).length
  const indexFile = path.join(home, "agents", "main", "sessions", "sessions.json")
  const indexFileBytes = fs.existsSync(indexFile) ? fs.statSync(indexFile).size : 0
  const result: WorkerResult = {
    mode, count, concurrency, idle, after, createMs, createCpuMs,
    liveAfter: stats.live, passivations: stats.passivations, indexEntries, indexFileBytes,
    ...(waitForPassivationMs === undefined ? {} : { waitForPassivationMs }),
    notes
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  anonHistogram("after")
  snapshot("after")
  if (process.env.BENCH_SMAPS_TOP !== undefined) {
    // Investigation aid: the largest resident anonymous mappings.
    const maps: Array<{ range: string; size: number; rss: number }> = []
    for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
      const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line)
      if (header !== null) maps.push({ range: `${header[1]}-${header[2]} ${header[3]} ${header[4]}`, size: parseInt(header[2] ?? "0", 16) - parseInt(header[1] ?? "0", 16), rss: 0 })
      const rss = /^Rss:\s+(\d+) kB$/.exec(line)
      const last = maps.at(-1)
      if (rss !== null && last !== undefined) last.rss = Number(rss[1]) * 1024
    }
    for (const m of maps.sort((a, b) => b.rss - a.rss).slice(0, Number(process.env.BENCH_SMAPS_TOP))) {
      progress(`mapping ${m.range} size ${(m.size / 2 ** 20).toFixed(1)} MiB rss ${(m.rss / 2 ** 20).toFixed(1)} MiB`)
    }
  }
  const settleMs = Number(process.env.BENCH_SETTLE_MS ?? 0)
  if (settleMs > 0) {
    yield* Effect.sleep(settleMs)
    const settled = yield* Effect.promise(measure)
    progress(`after ${settleMs} ms more: rss ${(settled.rss / 2 ** 20).toFixed(1)} MiB, heapTotal ${(settled.heapTotal / 2 ** 20).toFixed(1)} MiB, heapUsed ${(settled.heapUsed / 2 ** 20).toFixed(1)} MiB`)
    anonHistogram("settled")
  }
})

// The measured process is set up as src/main.ts sets up the gateway process.
tuneHeap()
// Investigation aid: BENCH_V8_FLAGS="--flag=value ..." set at run time after that, before the layer
// is built (BENCH_V8_FLAGS=--heap-growing-percent=0 gives V8's own heap growth back).
if (process.env.BENCH_V8_FLAGS !== undefined) for (const flag of process.env.BENCH_V8_FLAGS.split(" ").filter((f) => f !== "")) v8.setFlagsFromString(flag)

await Effect.runPromise(program.pipe(Effect.provide(App.core({}))))
