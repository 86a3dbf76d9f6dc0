/**
 * SessionStore on the file system, in OpenClaw's layout:
 * `<home>/agents/<agentId>/sessions/sessions.json` and `<sessionId>.jsonl`.
 * Each transcript has one writer (its session actor), so no lock files.
 * The index is a cache of what the transcripts say: writes are coalesced,
 * and a lost or corrupt index is rebuilt from the transcript headers.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer, Queue, Schema, Semaphore } from "effect"
import { AGENT_ID_PATTERN, isValidSessionId } from "./SessionKey.ts"
import { emptySessionEntry, SessionEntry, SessionStore, StoreError } from "./SessionStore.ts"
import * as Transcript from "./Transcript.ts"
import { isErrno } from "../platform/Errno.ts"

const decodeEntry = Schema.decodeUnknownResult(SessionEntry)
const decodeIndexJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Unknown)))
const FLUSH_DELAY_MS = 250

export interface FileSessionStoreOptions {
  readonly home: string
  /**
   * Reads without writing anything: no index flushes, no repairs or backups
   * written. For commands that only look while a gateway may own the files.
   */
  readonly readOnly?: boolean | undefined
}

const errorMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)
const isNotFound = (error: unknown): boolean => isErrno(error, "ENOENT")

export const make = Effect.fn("FileSessionStore.make")(function*(options: FileSessionStoreOptions) {
  const readOnly = options.readOnly === true
  const io = <A>(operation: string, file: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (error) => new StoreError({ operation, path: file, message: errorMessage(error) }) })

  // Agent ids become directory names, so they are held to their pattern here, at the last step.
  const sessionsDir = (agentId: string): Effect.Effect<string, StoreError> =>
    AGENT_ID_PATTERN.test(agentId)
      ? Effect.succeed(path.join(options.home, "agents", agentId, "sessions"))
      : Effect.fail(new StoreError({ operation: "resolve", path: agentId, message: `agent id ${JSON.stringify(agentId)} is not valid (${AGENT_ID_PATTERN})` }))
  const indexPath = (agentId: string) => sessionsDir(agentId).pipe(Effect.map((dir) => path.join(dir, "sessions.json")))

  const transcriptPath = (agentId: string, sessionId: string): Effect.Effect<string, StoreError> =>
    isValidSessionId(sessionId)
      ? sessionsDir(agentId).pipe(Effect.map((dir) => path.join(dir, `${sessionId}.jsonl`)))
      : Effect.fail(new StoreError({ operation: "resolve", path: sessionId, message: `session id ${JSON.stringify(sessionId)} is not a valid file name` }))

  let tmpCounter = 0
  const writeAtomic = (file: string, data: string) =>
    io("write", file, async () => {
      const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`
      const handle = await fs.open(tmp, "w", 0o600)
      try {
        await handle.writeFile(data)
        await handle.datasync()
      } finally {
        await handle.close()
      }
      await fs.rename(tmp, file)
    })

  // --- the index -----------------------------------------------------------
  const indexes = new Map<string, Map<string, SessionEntry>>()
  const dirty = new Set<string>()
  const flushSignal = yield* Queue.sliding<void>(1)

  /** The index as the transcript headers tell it; unreadable files are skipped with a warning. */
  const rebuildIndex = Effect.fnUntraced(function*(agentId: string) {
    const dir = yield* sessionsDir(agentId)
    const names = yield* io("list", dir, () => fs.readdir(dir)).pipe(Effect.catch(() => Effect.succeed<Array<string>>([])))
    const index = new Map<string, SessionEntry>()
    for (const name of names) {
      if (!name.endsWith(".jsonl")) continue
      const file = path.join(dir, name)
      const read = yield* Effect.result(Effect.all([io("read", file, () => fs.readFile(file, "utf8")), io("stat", file, () => fs.stat(file))]))
      if (read._tag === "Failure") {
        yield* Effect.logWarning(`skipped ${file} while rebuilding the session index: ${read.failure.message}`)
        continue
      }
      const [text, stat] = read.success
      const parsed = Transcript.parse(text)
      const header = parsed.header
      if (header?.key === undefined) continue
      const previous = index.get(header.key)
      const startedAt = Date.parse(header.timestamp)
      if (previous !== undefined && previous.sessionStartedAt > startedAt) continue
      index.set(header.key, {
        ...emptySessionEntry(header.id, agentId, Number.isFinite(startedAt) ? startedAt : stat.mtimeMs),
        updatedAt: stat.mtimeMs,
        sessionFile: name,
        compactionCount: parsed.entries.filter((e) => e.type === "compaction").length,
        turnCount: parsed.entries.filter((e) => e.type === "message" && e.message.role === "user").length
      })
    }
    return index
  })

  const loadIndex = Effect.fnUntraced(function*(agentId: string) {
    const cached = indexes.get(agentId)
    if (cached !== undefined) return cached
    const file = yield* indexPath(agentId)
    const text = yield* io("read", file, () => fs.readFile(file, "utf8").catch((error: unknown) => {
      if (isNotFound(error)) return undefined
      throw error
    }))
    let index: Map<string, SessionEntry>
    if (text === undefined) {
      index = yield* rebuildIndex(agentId)
    } else {
      // Entry by entry: one bad entry costs only itself, and the transcripts fill the gap.
      const decoded = decodeIndexJson(text)
      const problems: Array<string> = []
      index = new Map()
      if (decoded._tag === "Failure") problems.push(`not a JSON object (${decoded.failure.message.split("\n")[0]})`)
      else {
        for (const [key, raw] of Object.entries(decoded.success)) {
          const entry = decodeEntry(raw)
          if (entry._tag === "Success") index.set(key, entry.success)
          else problems.push(`${key}: ${entry.failure.message.split("\n")[0]}`)
        }
      }
      if (problems.length > 0) {
        const rebuilt = yield* rebuildIndex(agentId)
        for (const [key, entry] of rebuilt) if (!index.has(key)) index.set(key, entry)
        if (readOnly) {
          yield* Effect.logWarning(`session index ${file} has problems (${problems.join("; ")}); showing it completed from the transcripts`)
        } else {
          const backup = `${file}.corrupt-${Date.now()}`
          yield* io("backup", file, () => fs.copyFile(file, backup))
          yield* Effect.logWarning(`session index ${file} has problems (${problems.join("; ")}); kept it as ${backup} and completed it from the transcripts`)
          dirty.add(agentId)
          yield* Queue.offer(flushSignal, undefined)
        }
      }
    }
    indexes.set(agentId, index)
    return index
  })

  const agentOfKey = (key: string) => key.split(":")[1] ?? "main"

  const markDirty = (agentId: string) =>
    Effect.suspend(() => {
      dirty.add(agentId)
      return Queue.offer(flushSignal, undefined)
    })

  // One flush at a time; an agent whose write failed stays dirty for the next one.
  const flushLock = yield* Semaphore.make(1)
  const flush = flushLock.withPermits(1)(Effect.gen(function*() {
    if (readOnly) return
    const agents = [...dirty]
    dirty.clear()
    for (const agentId of agents) {
      const index = indexes.get(agentId)
      if (index === undefined) continue
      yield* Effect.gen(function*() {
        const dir = yield* sessionsDir(agentId)
        yield* io("mkdir", dir, () => fs.mkdir(dir, { recursive: true, mode: 0o700 }))
        yield* writeAtomic(yield* indexPath(agentId), JSON.stringify(Object.fromEntries(index)))
      }).pipe(Effect.tapError(() => Effect.sync(() => dirty.add(agentId))))
    }
  })).pipe(Effect.withSpan("FileSessionStore.flush"))

  // Coalesces index writes: one write per burst, and none at all while idle.
  yield* Queue.take(flushSignal).pipe(
    Effect.andThen(Effect.sleep(FLUSH_DELAY_MS)),
    Effect.andThen(flush),
    Effect.catchCause((cause) => Effect.logError("session index flush failed", cause)),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Effect.addFinalizer(() => flush.pipe(Effect.catchCause((cause) => Effect.logError("session index flush failed", cause))))

  // --- transcripts ---------------------------------------------------------
  const createTranscript = Effect.fn("SessionStore.createTranscript")(function*(agentId: string, header: Transcript.Header) {
    const file = yield* transcriptPath(agentId, header.id)
    const dir = yield* sessionsDir(agentId)
    yield* io("mkdir", dir, () => fs.mkdir(dir, { recursive: true, mode: 0o700 }))
    // A file that already exists (a crash right after its header was written) is kept as it is.
    yield* io("create", file, () => fs.writeFile(file, Transcript.encodeLine(header), { mode: 0o600, flag: "wx" }).catch((error: unknown) => {
      if (!isErrno(error, "EEXIST")) throw error
    }))
  })

  const loadTranscript = Effect.fn("SessionStore.loadTranscript")(function*(agentId: string, sessionId: string, key: string) {
    const file = yield* transcriptPath(agentId, sessionId)
    const text = yield* io("read", file, () => fs.readFile(file, "utf8").catch((error: unknown) => {
      if (isNotFound(error)) return undefined
      throw error
    }))
    const freshHeader: Transcript.Header = {
      type: "session",
      version: Transcript.TRANSCRIPT_VERSION,
      id: sessionId,
      timestamp: new Date().toISOString(),
      cwd: "",
      key,
      agentId
    }
    if (text === undefined) return { header: freshHeader, entries: [], repairs: [], exists: false }
    const parsed = Transcript.parse(text)
    const repaired = Transcript.repair(parsed.entries)
    const repairs: Array<string> = []
    if (parsed.tornTail) repairs.push("removed a torn last line left by an interrupted write")
    if (parsed.missingNewline) repairs.push("added the missing newline after the last line")
    if (parsed.header === undefined) repairs.push("restored the missing header line")
    let backup: string | undefined
    if (!readOnly && (parsed.badLines.length > 0 || repaired.dropped.length > 0)) {
      backup = `${file}.corrupt-${Date.now()}`
      yield* io("backup", file, () => fs.copyFile(file, backup ?? file))
    }
    for (const bad of parsed.badLines) repairs.push(`line ${bad.line}: ${bad.problem}; removed (the original file is kept as ${path.basename(backup ?? "")})`)
    repairs.push(...repaired.actions)
    const header = parsed.header ?? freshHeader
    if (repairs.length > 0 && readOnly) {
      yield* Effect.logWarning(`transcript ${file} needs repair (${repairs.join("; ")}); not written in read-only mode`)
    } else if (repairs.length > 0) {
      const body = [header, ...repaired.entries].map(Transcript.encodeLine).join("")
      yield* writeAtomic(file, body)
      yield* Effect.logWarning(`repaired transcript ${file}: ${repairs.join("; ")}`)
    }
    return { header, entries: repaired.entries, repairs, exists: true }
  })

  const append = Effect.fn("SessionStore.append")(function*(agentId: string, sessionId: string, entries: ReadonlyArray<Transcript.Entry>, options?: { readonly sync?: boolean }) {
    if (entries.length === 0) return
    const file = yield* transcriptPath(agentId, sessionId)
    const data = entries.map(Transcript.encodeLine).join("")
    yield* io("append", file, async () => {
      const handle = await fs.open(file, "a", 0o600)
      try {
        // One write call per batch: a kill -9 can only ever cut the batch at its end.
        await handle.write(data)
        if (options?.sync === true) await handle.datasync()
      } finally {
        await handle.close()
      }
    })
  })

  const archiveTranscript = Effect.fn("SessionStore.archiveTranscript")(function*(agentId: string, sessionId: string, reason: "reset" | "deleted") {
    const file = yield* transcriptPath(agentId, sessionId)
    const target = `${file}.${reason}.${new Date().toISOString().replaceAll(":", "-")}`
    yield* io("archive", file, () => fs.rename(file, target).catch((error: unknown) => {
      if (!isNotFound(error)) throw error
    }))
  })

  return SessionStore.of({
    getEntry: (key) => loadIndex(agentOfKey(key)).pipe(Effect.map((index) => index.get(key))),
    putEntry: (key, entry) =>
      loadIndex(agentOfKey(key)).pipe(
        Effect.tap((index) => Effect.sync(() => index.set(key, entry))),
        Effect.andThen(markDirty(agentOfKey(key)))
      ),
    deleteEntry: (key) =>
      loadIndex(agentOfKey(key)).pipe(
        Effect.tap((index) => Effect.sync(() => index.delete(key))),
        Effect.andThen(markDirty(agentOfKey(key)))
      ),
    listEntries: Effect.fnUntraced(function*(agentId?: string) {
      const agents = agentId !== undefined
        ? [agentId]
        : (yield* io("list", path.join(options.home, "agents"), () => fs.readdir(path.join(options.home, "agents"))).pipe(
          Effect.catch(() => Effect.succeed<Array<string>>([]))
        )).filter((name) => AGENT_ID_PATTERN.test(name))
      const rows: Array<readonly [string, SessionEntry]> = []
      for (const agent of agents) {
        const index = yield* loadIndex(agent)
        for (const row of index) rows.push(row)
      }
      return rows.sort((a, b) => b[1].updatedAt - a[1].updatedAt)
    }),
    createTranscript,
    loadTranscript,
    append,
    archiveTranscript,
    flush
  })
})

export const layer = (options: FileSessionStoreOptions) => Layer.effect(SessionStore, make(options))
