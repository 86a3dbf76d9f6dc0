/**
 * SessionStore on the file system, in OpenClaw's layout:
 * `<home>/agents/<agentId>/sessions/sessions.json` and `<sessionId>.jsonl`.
 * Each transcript has one writer (its session actor), so no lock files.
 * The index is a cache of what the transcripts say: writes are coalesced,
 * and a lost or corrupt index is rebuilt from the transcript headers.
 */
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Layer, Queue, Schema, Semaphore } from "effect"
import { AGENT_ID_PATTERN, isValidSessionId } from "./SessionKey.ts"
import { type AppendOptions, carriedOverOnReset, emptySessionEntry, SessionEntry, SessionStore, StoreError, type StoredFile } from "./SessionStore.ts"
import * as Transcript from "./Transcript.ts"
import { isErrno } from "../platform/Errno.ts"

const decodeEntry = Schema.decodeUnknownResult(SessionEntry)
const decodeIndexJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Unknown)))
const FLUSH_DELAY_MS = 250
/**
 * sessions.json is rewritten whole (OpenClaw's format), so a flush costs in
 * proportion to the sessions it holds: 100,000 are 29 MiB of JSON, about
 * 50 ms of CPU plus the write and its datasync. Flushing every 250 ms under
 * steady traffic would then take a sixth of a core and write 100 MiB/s; the
 * wait before a flush grows with the index instead, by 1 ms per 20 entries
 * (5 s at 100,000), which keeps both to a few percent. The index is a cache
 * of the transcripts' headers (rebuilt from them when lost), so a later
 * flush loses nothing.
 */
const FLUSH_ENTRIES_PER_MS = 20

/** How long a flush waits for more changes, given the largest index it will write. */
export const flushDelayMs = (entries: number): number => Math.max(FLUSH_DELAY_MS, Math.ceil(entries / FLUSH_ENTRIES_PER_MS))
/** Characters per piece of sessions.json as it is written. */
const INDEX_CHUNK_CHARS = 64 * 1024

/**
 * sessions.json in pieces of about INDEX_CHUNK_CHARS, from a snapshot of the
 * index taken when the write starts (entries are replaced, never mutated, so
 * the snapshot is consistent). One JSON string of the whole index (35 MB for
 * 100,000 sessions) and the object built for it were allocated on every
 * flush; the pieces are young-generation strings, and the Buffer each becomes
 * for the write is small enough to be reused by malloc instead of growing its
 * heap.
 */
export const indexJsonChunks = (index: ReadonlyMap<string, SessionEntry>): Iterable<string> => {
  const keys = [...index.keys()]
  const entries = [...index.values()]
  return {
    *[Symbol.iterator]() {
      let chunk = "{"
      for (let i = 0; i < keys.length; i++) {
        chunk += `${i === 0 ? "" : ","}${JSON.stringify(keys[i])}:${JSON.stringify(entries[i])}`
        if (chunk.length >= INDEX_CHUNK_CHARS) {
          yield chunk
          chunk = ""
        }
      }
      yield `${chunk}}`
    }
  }
}

export interface FileSessionStoreOptions {
  readonly home: string
  /**
   * Reads without writing anything: no index flushes, no repairs or backups
   * written. For commands that only look while a gateway may own the files.
   */
  readonly readOnly?: boolean | undefined
  /** Transcripts kept open between appends at most; the least recently used is closed first. Default 128. */
  readonly maxOpenTranscripts?: number | undefined
  /** An open transcript without an append for this long is closed. Default 10 s. */
  readonly transcriptIdleMs?: number | undefined
}

const DEFAULT_MAX_OPEN_TRANSCRIPTS = 128
const DEFAULT_TRANSCRIPT_IDLE_MS = 10_000

/**
 * A transcript kept open for appends (O_APPEND), with the identity of the
 * file it was opened as. While its open is still in flight (`handle`
 * undefined), appends queue their lines, written in order as soon as it is open.
 */
interface OpenTranscript {
  readonly file: string
  handle: fs.FileHandle | undefined
  dev: number
  ino: number
  lastUsed: number
  /** Set once it is taken out of use: the close in progress or done. */
  closed: Promise<void> | undefined
  /** While opening: the lines appended meanwhile. */
  queued: Array<string> | undefined
  /** Whether a caller has gone on without waiting for its queued lines (a background append). */
  detached: boolean
  /** Settles once the file is open and the queued lines written; rejects with the reason they were not. */
  ready: Promise<void>
}

const errorMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)

const ARCHIVE_NAME = /\.jsonl\.(?:reset|deleted)\.(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2}(?:\.\d+)?)Z$/
const BACKUP_NAME = /\.corrupt-(\d+)$/
const TEMPORARY_NAME = /\.\d+\.[0-9a-f]+\.tmp$/

/** What a file of a sessions directory is, by the names this store gives them, and when it was set aside. */
export const classifyStoredFile = (name: string, bytes: number, mtimeMs: number): StoredFile => {
  const archive = ARCHIVE_NAME.exec(name)
  if (archive !== null) {
    const at = Date.parse(`${archive[1]}T${archive[2]}:${archive[3]}:${archive[4]}Z`)
    return { name, bytes, kind: "archive", at: Number.isFinite(at) ? at : mtimeMs }
  }
  const backup = BACKUP_NAME.exec(name)
  if (backup !== null) return { name, bytes, kind: "backup", at: Number(backup[1]) }
  if (name === "sessions.json") return { name, bytes, kind: "index", at: mtimeMs }
  if (TEMPORARY_NAME.test(name)) return { name, bytes, kind: "temporary", at: mtimeMs }
  if (name.endsWith(".jsonl") && isValidSessionId(name.slice(0, -".jsonl".length))) return { name, bytes, kind: "transcript", at: mtimeMs }
  return { name, bytes, kind: "other", at: mtimeMs }
}
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
  const writeAtomic = (file: string, data: string | Iterable<string>) =>
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
  const writtenSignal = yield* Queue.sliding<void>(1)

  const listSessionsDir = (agentId: string) =>
    sessionsDir(agentId).pipe(Effect.flatMap((dir) => io("list", dir, () => fs.readdir(dir))), Effect.catch(() => Effect.succeed<Array<string>>([])))

  /** The index as the transcript headers tell it (of the files named, else of all); unreadable files are skipped with a warning. */
  const rebuildIndex = Effect.fnUntraced(function*(agentId: string, only?: ReadonlyArray<string>) {
    const dir = yield* sessionsDir(agentId)
    const names = only ?? (yield* listSessionsDir(agentId))
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

  /**
   * sessions.json is written a while after a change (longer for a large
   * index), so after a crash it can miss the last sessions created or reset,
   * and still hold those deleted. Their transcripts tell: a transcript no
   * entry points to is read and its session put back (the newer one wins for
   * its key), and an entry whose transcript is gone while an archived
   * `.deleted.` copy exists is dropped. One directory listing per agent, when
   * its index is first loaded; the headers of orphans only.
   */
  const reconcile = Effect.fnUntraced(function*(agentId: string, index: Map<string, SessionEntry>) {
    const names = yield* listSessionsDir(agentId)
    const present = new Set(names)
    const known = new Set<string>()
    for (const entry of index.values()) known.add(`${entry.sessionId}.jsonl`)
    const orphans = names.filter((name) => name.endsWith(".jsonl") && !known.has(name))
    const deleted = new Set<string>()
    const reset = new Set<string>()
    for (const name of names) {
      const deletedAt = name.indexOf(".jsonl.deleted.")
      if (deletedAt > 0) deleted.add(name.slice(0, deletedAt + ".jsonl".length))
      const resetAt = name.indexOf(".jsonl.reset.")
      if (resetAt > 0) reset.add(name.slice(0, resetAt + ".jsonl".length))
    }
    const wasDeleted = (entry: SessionEntry) => {
      const file = `${entry.sessionId}.jsonl`
      return !present.has(file) && deleted.has(file)
    }
    const wasReset = (entry: SessionEntry) => {
      const file = `${entry.sessionId}.jsonl`
      return !present.has(file) && !deleted.has(file) && reset.has(file)
    }
    const changes: Array<string> = []
    if (orphans.length > 0) {
      for (const [key, entry] of yield* rebuildIndex(agentId, orphans)) {
        const current = index.get(key)
        if (current !== undefined && current.sessionStartedAt >= entry.sessionStartedAt) continue
        // A newer session under a known key is a reset, and keeps what a reset keeps;
        // after a delete it starts bare, as the live session did.
        index.set(key, current === undefined || wasDeleted(current) ? entry : { ...entry, ...carriedOverOnReset(current) })
        changes.push(`${key} (session ${entry.sessionId}) put back from its transcript`)
      }
    }
    for (const [key, entry] of index) {
      if (wasDeleted(entry)) {
        index.delete(key)
        changes.push(`${key} dropped (its transcript was archived as deleted)`)
      } else if (wasReset(entry)) {
        // Reset before the index caught up (its new session had no transcript yet): the key starts its fresh
        // session now, never the archived one's id again (a turn would write a second file of that id).
        const now = Date.now()
        const fresh: SessionEntry = { ...emptySessionEntry(crypto.randomUUID(), agentId, now), ...carriedOverOnReset(entry) }
        index.set(key, fresh)
        changes.push(`${key} moved to a fresh session ${fresh.sessionId} (its transcript was archived by a reset)`)
      }
    }
    if (changes.length === 0) return
    yield* Effect.logWarning(`session index of agent ${agentId} was behind its transcripts (an unclean stop?): ${changes.join("; ")}`)
    if (!readOnly) {
      dirty.add(agentId)
      yield* Queue.offer(flushSignal, undefined)
    }
  })

  // One first load at a time: two callers loading the same index at once each
  // built their own map, and the one set last dropped what was put in the other.
  const loadLock = yield* Semaphore.make(1)
  const loadIndex = (agentId: string): Effect.Effect<Map<string, SessionEntry>, StoreError> =>
    Effect.suspend(() => {
      const cached = indexes.get(agentId)
      return cached !== undefined ? Effect.succeed(cached) : loadLock.withPermits(1)(Effect.suspend(() => {
        const loaded = indexes.get(agentId)
        return loaded !== undefined ? Effect.succeed(loaded) : readIndex(agentId)
      }))
    })

  const readIndex = Effect.fnUntraced(function*(agentId: string) {
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
          if (entry._tag === "Failure") problems.push(`${key}: ${entry.failure.message.split("\n")[0]}`)
          // An id that cannot name a transcript file (an index edited by hand) would leave the key unusable.
          else if (!isValidSessionId(entry.success.sessionId)) problems.push(`${key}: session id ${JSON.stringify(entry.success.sessionId)} cannot name a transcript file`)
          else index.set(key, entry.success)
        }
      }
      if (problems.length === 0) yield* reconcile(agentId, index)
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
        yield* writeAtomic(yield* indexPath(agentId), indexJsonChunks(index))
      }).pipe(Effect.tapError(() => Effect.sync(() => dirty.add(agentId))))
    }
    if (agents.length > 0) yield* Queue.offer(writtenSignal, undefined)
  })).pipe(Effect.withSpan("FileSessionStore.flush"))

  const largestDirtyIndex = () => {
    let largest = 0
    for (const agentId of dirty) largest = Math.max(largest, indexes.get(agentId)?.size ?? 0)
    return largest
  }

  // Coalesces index writes: one write per burst, and none at all while idle.
  yield* Queue.take(flushSignal).pipe(
    // Measured again after each wait: an index that grew meanwhile (a burst of new sessions) waits for its own size.
    Effect.andThen(Effect.gen(function*() {
      let waited = 0
      for (let due = flushDelayMs(largestDirtyIndex()); waited < due; due = flushDelayMs(largestDirtyIndex())) {
        yield* Effect.sleep(due - waited)
        waited = due
      }
    })),
    Effect.andThen(flush),
    Effect.catchCause((cause) => Effect.logError("session index flush failed", cause)),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Effect.addFinalizer(() => flush.pipe(Effect.catchCause((cause) => Effect.logError("session index flush failed", cause))))

  // --- transcripts ---------------------------------------------------------
  // A live session appends a few lines per turn. Opening and closing the file
  // for every append cost two thread-pool round trips each time, the largest
  // share of the gateway's own CPU per turn, so a transcript stays open
  // between appends: at most `maxOpenTranscripts` at once (the least recently
  // used is closed first), each closed after `transcriptIdleMs` without an
  // append, when it is archived or repaired, and when the store's scope closes.
  const maxOpen = Math.max(1, options.maxOpenTranscripts ?? DEFAULT_MAX_OPEN_TRANSCRIPTS)
  const idleMs = Math.max(1, options.transcriptIdleMs ?? DEFAULT_TRANSCRIPT_IDLE_MS)
  /** Open transcripts by path; Map order is least recently used first. */
  const openTranscripts = new Map<string, OpenTranscript>()
  /** Closes in flight, so the scope's finalizer can wait for them. */
  const closing = new Set<Promise<void>>()
  const idleSignal = yield* Queue.sliding<void>(1)

  /**
   * Takes a transcript out of use and closes it. FileHandle.close waits for
   * an operation still running on it (a datasync), so nothing is cut short; a
   * transcript still opening is closed once its queued lines are written.
   */
  const retire = (open: OpenTranscript): Promise<void> => {
    if (openTranscripts.get(open.file) === open) openTranscripts.delete(open.file)
    if (open.closed !== undefined) return open.closed
    const closed: Promise<void> = open.ready
      .then(() => open.handle?.close(), () => undefined)
      .catch(() => undefined)
      .finally(() => closing.delete(closed))
    closing.add(closed)
    open.closed = closed
    return closed
  }
  const retireFile = (file: string): Promise<void> => {
    const open = openTranscripts.get(file)
    return open === undefined ? Promise.resolve() : retire(open)
  }

  /**
   * Lines a background append queued, lost because their file could not be
   * opened: the next append to that file fails with the reason, so the
   * session learns that its memory holds more than its transcript (it then
   * reloads from disk). Cleared when the transcript is loaded or created again.
   */
  const lostWrites = new Map<string, StoreError>()

  /**
   * Starts opening `file` (`open` resolves to its handle, and whether `first`
   * is to be written: not when a new transcript's file existed already, whose
   * header from before a crash is kept as it is) and keeps it as the open
   * transcript of its path at once, with `first` queued; returns before the
   * open is done. The least recently used transcripts beyond `maxOpen` are closed,
   * never one still opening (its queued lines would race a second opening).
   */
  const startOpen = (file: string, open: () => Promise<{ readonly handle: fs.FileHandle; readonly keepFirst: boolean }>, first: string): OpenTranscript => {
    const opening: OpenTranscript = {
      file,
      handle: undefined,
      dev: 0,
      ino: 0,
      lastUsed: Date.now(),
      closed: undefined,
      queued: [first],
      detached: false,
      ready: Promise.resolve()
    }
    const forget = (error: unknown) => {
      if (openTranscripts.get(file) === opening) openTranscripts.delete(file)
      if (opening.detached) lostWrites.set(file, appendFailed(file, error))
      opening.queued = undefined
      throw error
    }
    // A transcript of this path still opening is let go first, and this open waits for it to be written and
    // closed: two opens of one file in flight could write their lines in either order.
    const previous = openTranscripts.get(file)
    const before = previous === undefined ? undefined : retire(previous)
    const opened = previous?.handle === undefined && before !== undefined ? before.then(open) : open()
    opening.ready = opened.then(({ handle, keepFirst }) => {
      try {
        const stat = fsSync.fstatSync(handle.fd)
        opening.handle = handle
        opening.dev = stat.dev
        opening.ino = stat.ino
        const queued = opening.queued ?? []
        opening.queued = undefined
        opening.lastUsed = Date.now()
        const data = (keepFirst ? queued : queued.slice(1)).join("")
        if (data.length > 0) writeLines(opening, data)
      } catch (error) {
        opening.handle = undefined
        void handle.close().catch(() => undefined)
        forget(error)
      }
    }, forget)
    // A failure reaches whoever waits on `ready`; nobody may be waiting.
    opening.ready.catch(() => undefined)
    for (const oldest of openTranscripts.values()) {
      if (openTranscripts.size < maxOpen) break
      if (oldest.handle !== undefined) void retire(oldest)
    }
    openTranscripts.set(file, opening)
    if (openTranscripts.size === 1) Queue.offerUnsafe(idleSignal, undefined)
    return opening
  }

  /**
   * The open transcript of `file`, if it is still the file at that path. The
   * path is checked on every append (a stat of a cached inode, about a
   * microsecond): a transcript moved or replaced behind the store's back is
   * then reopened, as a per-append open would, instead of written blind. One
   * still opening is taken as it is.
   */
  const current = (file: string): OpenTranscript | undefined => {
    const open = openTranscripts.get(file)
    if (open === undefined) return undefined
    if (open.handle !== undefined) {
      let stat: fsSync.Stats | undefined
      try {
        stat = fsSync.statSync(file, { throwIfNoEntry: false })
      } catch {
        stat = undefined
      }
      if (stat === undefined || stat.ino !== open.ino || stat.dev !== open.dev) {
        void retire(open)
        return undefined
      }
    }
    openTranscripts.delete(file)
    openTranscripts.set(file, open)
    open.lastUsed = Date.now()
    return open
  }

  /**
   * Writes the lines with write(2) on the open descriptor. A write of a few
   * hundred bytes into the page cache takes microseconds, far less than a
   * thread-pool round trip; only the open and the datasync, which wait for
   * the disk, go to the thread pool. One batch, one write call: a kill -9 can
   * only cut the batch at its end, and loading repairs a torn last line.
   */
  const writeLines = (open: OpenTranscript, data: string) => {
    const fd = open.handle?.fd
    if (fd === undefined) throw new Error("the transcript is not open")
    const bytes = Buffer.from(data, "utf8")
    let written = 0
    try {
      while (written < bytes.length) {
        const count = fsSync.writeSync(fd, bytes, written, bytes.length - written)
        if (count <= 0) throw new Error(`write made no progress after ${written} of ${bytes.length} bytes`)
        written += count
      }
    } catch (error) {
      // A write cut short (a full disk) leaves part of a line that the next
      // append would join; it is taken back, so the file still ends at a line.
      if (written > 0) {
        try {
          fsSync.ftruncateSync(fd, fsSync.fstatSync(fd).size - written)
        } catch {
          // the load's torn-tail repair is the fallback
        }
      }
      throw error
    }
  }

  const appendFailed = (file: string, error: unknown) =>
    error instanceof StoreError ? error : new StoreError({ operation: "append", path: file, message: errorMessage(error) })

  /**
   * Waits for the transcript's queued lines to be written (and, with `sync`,
   * for the disk); a failure takes the transcript out of use, so the next
   * append opens the file afresh.
   */
  const settle = (open: OpenTranscript, sync: boolean) =>
    Effect.tryPromise({
      try: async () => {
        await open.ready
        if (sync) await open.handle?.datasync()
      },
      catch: (error) => appendFailed(open.file, error)
    }).pipe(Effect.tapError(() => Effect.promise(() => retire(open))))

  // Idle transcripts are closed; with none open this fiber waits for a signal, so an idle store has no timer.
  yield* Effect.gen(function*() {
    while (true) {
      if (openTranscripts.size === 0) {
        yield* Queue.take(idleSignal)
        continue
      }
      // The least recently used that is open. One still opening (a slow disk) is never closed from here: an
      // append after that would open the file a second time and could overtake its queued lines.
      let oldest: OpenTranscript | undefined
      for (const open of openTranscripts.values()) {
        if (open.handle !== undefined) {
          oldest = open
          break
        }
      }
      if (oldest === undefined) {
        yield* Effect.sleep(idleMs)
        continue
      }
      const wait = oldest.lastUsed + idleMs - Date.now()
      if (wait > 0) yield* Effect.sleep(wait)
      else yield* Effect.promise(() => retire(oldest))
    }
  }).pipe(Effect.forkScoped)
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      for (const open of [...openTranscripts.values()]) void retire(open)
      await Promise.all([...closing])
    })
  )

  /** Waits for the open unless the caller goes on without it (`background`, see SessionStore.append). */
  const afterOpen = (open: OpenTranscript, options: AppendOptions | undefined): Effect.Effect<void, StoreError> => {
    const sync = options?.sync === true
    if (options?.background === true && !sync && open.handle === undefined) {
      open.detached = true
      return Effect.void
    }
    return settle(open, sync)
  }

  const createTranscript = (agentId: string, header: Transcript.Header, options?: { readonly background?: boolean }): Effect.Effect<void, StoreError> =>
    Effect.all([transcriptPath(agentId, header.id), sessionsDir(agentId)]).pipe(Effect.flatMap(([file, dir]) =>
      Effect.suspend(() => {
        lostWrites.delete(file)
        // The header is written on a handle the appends then use. O_EXCL: a file
        // that already exists (a crash right after its header was written) is kept as it is.
        const openNew = () => fs.open(file, "ax", 0o600)
        const open = startOpen(file, async () => {
          const handle = await openNew().catch(async (error: unknown) => {
            if (isErrno(error, "EEXIST")) return undefined
            if (!isNotFound(error)) throw error
            await fs.mkdir(dir, { recursive: true, mode: 0o700 })
            return openNew().catch((again: unknown) => isErrno(again, "EEXIST") ? undefined : Promise.reject(again))
          })
          return handle === undefined ? { handle: await fs.open(file, "a", 0o600), keepFirst: false } : { handle, keepFirst: true }
        }, Transcript.encodeLine(header))
        return afterOpen(open, options).pipe(Effect.mapError((error) => new StoreError({ operation: "create", path: file, message: error.message })))
      })
    ))

  const loadTranscript = Effect.fn("SessionStore.loadTranscript")(function*(agentId: string, sessionId: string, key: string) {
    const file = yield* transcriptPath(agentId, sessionId)
    // Lines a background append queued are read with the rest (a turn that failed right after it reloads).
    const opening = openTranscripts.get(file)
    if (opening !== undefined && opening.handle === undefined) yield* Effect.promise(() => opening.ready.catch(() => undefined))
    lostWrites.delete(file)
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
      // The repair replaces the file: a handle on the old one must not be written again.
      yield* Effect.promise(() => retireFile(file))
      yield* writeAtomic(file, body)
      yield* Effect.logWarning(`repaired transcript ${file}: ${repairs.join("; ")}`)
    }
    return { header, entries: repaired.entries, repairs, exists: true }
  })

  // Not an Effect.fn: two appends per turn, and a span plus a captured stack per call cost more than the write.
  const append = (agentId: string, sessionId: string, entries: ReadonlyArray<Transcript.Entry>, options?: AppendOptions): Effect.Effect<void, StoreError> =>
    entries.length === 0 ? Effect.void : transcriptPath(agentId, sessionId).pipe(
      Effect.flatMap((file) =>
        Effect.suspend(() => {
          const lost = lostWrites.get(file)
          if (lost !== undefined) return Effect.fail(lost)
          const data = entries.map(Transcript.encodeLine).join("")
          const open = current(file)
          if (open === undefined) return afterOpen(startOpen(file, async () => ({ handle: await fs.open(file, "a", 0o600), keepFirst: true }), data), options)
          if (open.queued !== undefined) {
            open.queued.push(data)
            return afterOpen(open, options)
          }
          try {
            writeLines(open, data)
          } catch (error) {
            return Effect.promise(() => retire(open)).pipe(Effect.andThen(Effect.fail(appendFailed(file, error))))
          }
          return options?.sync === true ? settle(open, true) : Effect.void
        })
      )
    )

  const archiveTranscript = Effect.fn("SessionStore.archiveTranscript")(function*(agentId: string, sessionId: string, reason: "reset" | "deleted") {
    const file = yield* transcriptPath(agentId, sessionId)
    const target = `${file}.${reason}.${new Date().toISOString().replaceAll(":", "-")}`
    yield* Effect.promise(() => retireFile(file))
    // After the retire: an open still in flight that fails records its loss, which the archive makes moot.
    lostWrites.delete(file)
    yield* io("archive", file, () => fs.rename(file, target).catch((error: unknown) => {
      if (!isNotFound(error)) throw error
    }))
  })

  // Directories only: a stray file under agents/ is no agent.
  const storedAgents = io("list", path.join(options.home, "agents"), () => fs.readdir(path.join(options.home, "agents"), { withFileTypes: true })).pipe(
    Effect.map((dirents) => dirents.filter((dirent) => dirent.isDirectory() && AGENT_ID_PATTERN.test(dirent.name)).map((dirent) => dirent.name)),
    Effect.catch(() => Effect.succeed<Array<string>>([]))
  )

  const storedFiles = Effect.fnUntraced(function*(agentId: string) {
    const dir = yield* sessionsDir(agentId)
    return yield* io("list", dir, async () => {
      const dirents = await fs.readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
        if (isNotFound(error)) return []
        throw error
      })
      const names = dirents.filter((dirent) => dirent.isFile()).map((dirent) => dirent.name)
      const files: Array<StoredFile> = []
      // A few stats at a time: a large directory must not take the whole thread pool from the turns' datasyncs.
      for (let i = 0; i < names.length; i += 8) {
        const batch = names.slice(i, i + 8)
        const stats = await Promise.all(batch.map((name) => fs.stat(path.join(dir, name)).catch(() => undefined)))
        stats.forEach((stat, j) => {
          const name = batch[j]
          if (stat !== undefined && name !== undefined) files.push(classifyStoredFile(name, stat.size, stat.mtimeMs))
        })
      }
      return files
    })
  })

  const removeTranscript = Effect.fn("SessionStore.removeTranscript")(function*(agentId: string, sessionId: string) {
    const file = yield* transcriptPath(agentId, sessionId)
    yield* Effect.promise(() => retireFile(file))
    lostWrites.delete(file)
    yield* io("remove", file, () => fs.unlink(file).catch((error: unknown) => {
      if (!isNotFound(error)) throw error
    }))
  })

  const removeStoredFile = Effect.fn("SessionStore.removeStoredFile")(function*(agentId: string, stored: StoredFile) {
    const dir = yield* sessionsDir(agentId)
    // Only what maintenance may erase, named as this store names it: never a live transcript or the index.
    const known = classifyStoredFile(stored.name, 0, 0)
    if (path.basename(stored.name) !== stored.name || (known.kind !== "archive" && known.kind !== "backup" && known.kind !== "temporary")) {
      return yield* new StoreError({ operation: "remove", path: path.join(dir, stored.name), message: "only archived transcripts, repair backups and leftover temporary files are removed this way" })
    }
    const file = path.join(dir, stored.name)
    yield* io("remove", file, () => fs.unlink(file).catch((error: unknown) => {
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
      const agents = agentId !== undefined ? [agentId] : yield* storedAgents
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
    flush,
    indexWritten: Queue.take(writtenSignal),
    entryCounts: Effect.sync(() => [...indexes].map(([agentId, index]) => [agentId, index.size] as const)),
    storedAgents,
    indexLocation: indexPath,
    storedFiles,
    removeTranscript,
    removeStoredFile
  })
})

export const layer = (options: FileSessionStoreOptions) => Layer.effect(SessionStore, make(options))
