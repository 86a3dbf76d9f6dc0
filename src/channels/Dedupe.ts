/**
 * Inbound de-duplication that survives restarts: platforms redeliver
 * messages after a reconnect or a resume, and OpenClaw's in-memory cache
 * forgot everything on restart, so replays were answered twice (its issue
 * tracker's top-10 complaint). Each message id seen is remembered for a day.
 *
 * Keys are `(channel, accountId, chatId, messageId)`. They live in memory
 * (oldest first, at most `maxEntries`) and in an append-only file,
 * `<stateDir>/channels/inbound-seen.jsonl`, one JSON line per key:
 * `[seenAtMs, channel, accountId, chatId, messageId]`. The file is read at
 * start (expired and unreadable lines dropped, a torn last line from a crash
 * ignored) and rewritten compactly when it holds many dead lines.
 *
 * Keys are written, not synced: a process crash keeps them (the kernel has
 * them), a power cut may lose the last ones. That cannot lose a message: the
 * channel journal syncs a message's `accepted` record before it is marked
 * seen here, so after a power cut the message is in the journal and is
 * finished (and marked seen again) at the restart. What a lost key can cost
 * is one answer to a redelivery of a message the journal had already closed,
 * which Discord does not do across a restart (a new gateway session replays
 * nothing). Syncing each key too was measured: it doubled the syncs on the
 * receive path (which handles one message at a time, so they cannot be
 * grouped) for that case alone.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { Paths } from "../config/Paths.ts"
import { isErrno } from "../platform/Errno.ts"
import type { InboundMessage } from "./InboundMessage.ts"
import { openAppendLog } from "../platform/AppendLog.ts"

export const DEDUPE_TTL_MS = 24 * 60 * 60_000
export const DEDUPE_MAX_ENTRIES = 50_000

export interface DedupeKey {
  readonly channel: string
  readonly accountId: string
  readonly chatId: string
  readonly messageId: string
}

export const dedupeKeyOf = (message: InboundMessage): DedupeKey => ({
  channel: message.channel,
  accountId: message.accountId,
  chatId: message.chatId,
  messageId: message.messageId
})

export const dedupeFile = (home: string): string => path.join(home, "channels", "inbound-seen.jsonl")

export class InboundDedupeError extends Schema.TaggedError<InboundDedupeError>()("InboundDedupeError", {
  file: Schema.String,
  message: Schema.String
}) {}

export interface InboundDedupeOptions {
  /** How long a key is remembered (default 24 h). */
  readonly ttlMs?: number | undefined
  /** At most this many keys are remembered; the oldest go first (default 50,000). */
  readonly maxEntries?: number | undefined
}

export interface InboundDedupeShape {
  /**
   * True exactly once per key within the TTL: the first delivery. Atomic, so
   * concurrent deliveries of one message get one `true`. A failed write is
   * logged and the key still counts as seen in this process.
   */
  readonly firstSeen: (key: DedupeKey) => Effect.Effect<boolean>
  /** Keys remembered now. */
  readonly size: Effect.Effect<number>
}

export class InboundDedupe extends Context.Service<InboundDedupe, InboundDedupeShape>()("beamclaw/channels/InboundDedupe") {
  /** The file under the state directory of `Paths`. */
  static readonly layer = (options?: InboundDedupeOptions) =>
    Layer.effect(InboundDedupe, Effect.gen(function*() {
      return yield* make(dedupeFile((yield* Paths).home), options)
    }))
  /** A given file, for tests and tools. */
  static readonly layerAt = (file: string, options?: InboundDedupeOptions) => Layer.effect(InboundDedupe, make(file, options))
}

const Line = Schema.fromJsonString(Schema.Tuple([Schema.Finite, Schema.String, Schema.String, Schema.String, Schema.String]))
const decodeLine = Schema.decodeUnknownResult(Line)

const keyString = (key: DedupeKey): string => JSON.stringify([key.channel, key.accountId, key.chatId, key.messageId])
const lineOf = (at: number, key: string): string => `[${at},${key.slice(1)}\n`

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

export const make = (file: string, options?: InboundDedupeOptions) =>
  Effect.gen(function*() {
    const ttlMs = options?.ttlMs ?? DEDUPE_TTL_MS
    const maxEntries = Math.max(1, options?.maxEntries ?? DEDUPE_MAX_ENTRIES)
    const fail = (what: string) => (error: unknown) => new InboundDedupeError({ file, message: `cannot ${what} ${file}: ${describe(error)}` })

    // Key → when it was seen, in insertion order, which is time order: eviction takes from the front.
    const seen = new Map<string, number>()
    const remember = (key: string, at: number) => {
      seen.delete(key)
      seen.set(key, at)
    }
    const evict = (now: number) => {
      for (const [key, at] of seen) {
        if (seen.size <= maxEntries && at > now - ttlMs) break
        seen.delete(key)
      }
    }

    const startedAt = yield* Clock.currentTimeMillis
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8").catch((error: unknown) => isErrno(error, "ENOENT") ? undefined : Promise.reject(error)),
      catch: fail("read")
    })
    let fileLines = 0
    let damaged = 0
    if (text !== undefined) {
      const lines = text.split("\n")
      // Text after the last newline is a line whose write a crash cut short.
      const torn = lines.pop() ?? ""
      if (torn !== "") damaged++
      for (const line of lines) {
        // An empty line is where the log started afresh after a write that failed before any byte landed.
        if (line === "") continue
        fileLines++
        const decoded = decodeLine(line)
        if (decoded._tag === "Failure") {
          damaged++
          continue
        }
        const [at, channel, accountId, chatId, messageId] = decoded.success
        if (at > startedAt - ttlMs) remember(keyString({ channel, accountId, chatId, messageId }), at)
      }
      evict(startedAt)
      if (damaged > 0) yield* Effect.logWarning(`inbound de-dupe file ${file}: skipped ${damaged} unreadable line(s) (a torn last line after a crash is expected)`)
    }

    const dir = path.dirname(file)
    yield* Effect.tryPromise({ try: () => fs.mkdir(dir, { recursive: true, mode: 0o700 }), catch: fail("create the directory of") })

    const log = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => openAppendLog(file), catch: fail("open") }),
      (opened) => Effect.promise(() => opened.close())
    )

    /** Rewrites the file with the live keys only (taken when the swap runs, in order with the appends). */
    const compact = Effect.tryPromise({
      try: () => {
        fileLines = seen.size
        return log.replace(() => Array.from(seen, ([key, at]) => lineOf(at, key)).join(""))
      },
      catch: fail("compact")
    })

    // Expired, unreadable or torn lines make the file worth rewriting before appending to it (a torn line must not prefix the next one).
    if (text !== undefined && (damaged > 0 || seen.size < fileLines / 2)) yield* compact

    const append = (line: string) =>
      Effect.gen(function*() {
        fileLines++
        if (fileLines > 2 * seen.size + 1024) yield* compact
        yield* Effect.tryPromise({ try: () => log.append(line), catch: fail("append to") })
      }).pipe(
        Effect.catch((error) => Effect.logWarning(`inbound de-dupe: ${error.message}; the key is remembered in memory only`))
      )

    const firstSeen = (key: DedupeKey): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const id = keyString(key)
        // Check and record with no yield between them: concurrent deliveries cannot both pass.
        const at = seen.get(id)
        if (at !== undefined && now - at < ttlMs) return false
        remember(id, now)
        evict(now)
        yield* append(lineOf(now, id))
        return true
      })

    return InboundDedupe.of({ firstSeen, size: Effect.sync(() => seen.size) })
  })
