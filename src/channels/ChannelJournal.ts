/**
 * What a channel account must not forget across a crash or restart, in
 * append-only JSONL files under `<state>/channels/<channel>/<account>/`:
 *
 * - `inbox.jsonl`: every accepted inbound message, then its reply text once
 *   the turn produced it, then `done` once the reply was delivered. At start
 *   the messages without `done` are handed back to be finished: delivered
 *   from the recorded reply when there is one, else run again.
 * - `delivered.jsonl`: the idempotency key and platform id of every piece sent,
 *   so a restart never sends a piece twice (the platform's own nonce window
 *   only lasts minutes); and for a piece the platform cannot de-duplicate, each
 *   attempt before it is made (`a: 1`, durable) and, when it provably did not
 *   reach the platform, its end (`a: 0`), so a restart never repeats an attempt
 *   whose outcome it does not know.
 * - `dead-letter.jsonl`: pieces that could not be sent, with the reason.
 *
 * Files are compacted at load (finished inbox entries and old delivery keys
 * dropped); a torn or unreadable line is skipped with a warning, never fatal.
 *
 * Durability: the `accepted` record is on disk (fdatasync) before `accepted`
 * returns, so a message marked seen by the de-dupe after it survives a power
 * cut; so are the reply (a restart delivers the recorded reply instead of
 * asking the model again) and each sent key (a restart does not send a piece
 * again). `done` and dead letters are only written: losing one costs a replay
 * that finds the reply and the keys on disk and sends nothing. Appends share
 * syncs (group commit, `AppendLog`), so concurrent records cost one fdatasync.
 *
 * The durable records (`accepted`, `replied`, `attempting`, `markSent`) fail
 * with `JournalWriteFailed` when they cannot be written: the caller then
 * does less (no answer, no attempt) rather than something a restart would
 * repeat. `done`, `attemptFailed` and dead letters stay best-effort (logged).
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Clock, Effect, Schema, type Scope } from "effect"
import { type AppendLog, type AppendLogOptions, openAppendLog } from "../platform/AppendLog.ts"
import type { DeadLetter, DeliveryLog } from "./Delivery.ts"
import { InboundMessage } from "./InboundMessage.ts"
import { writeFileAtomic } from "../platform/AtomicFile.ts"

/** Delivery keys are remembered this long (a reply is never re-delivered later than this after it was sent). */
export const DELIVERED_TTL_MS = 7 * 24 * 60 * 60_000
export const DELIVERED_MAX = 20_000

const Accepted = Schema.Struct({ t: Schema.Literal("accepted"), id: Schema.String, at: Schema.Number, sessionKey: Schema.String, message: InboundMessage })
/** How a reply was cut into pieces: a replay cuts it the same way, so piece n is the same text under the same key. */
export const Chunking = Schema.Struct({ maxChars: Schema.Number, maxLines: Schema.Number })
export type Chunking = typeof Chunking.Type
const Replied = Schema.Struct({ t: Schema.Literal("reply"), id: Schema.String, at: Schema.Number, text: Schema.String, chunk: Schema.optionalKey(Chunking) })
const Done = Schema.Struct({ t: Schema.Literal("done"), id: Schema.String, at: Schema.Number })
const InboxRecord = Schema.Union([Accepted, Replied, Done])
const SentRecord = Schema.Struct({ k: Schema.String, m: Schema.String, at: Schema.Number })
const AttemptRecord = Schema.Struct({ k: Schema.String, a: Schema.Literals([0, 1]), at: Schema.Number })
const DeliveredRecord = Schema.Union([SentRecord, AttemptRecord])

const decodeInbox = Schema.decodeUnknownResult(Schema.fromJsonString(InboxRecord))
const decodeDelivered = Schema.decodeUnknownResult(Schema.fromJsonString(DeliveredRecord))

/** An accepted message that was not finished when the process stopped. */
export interface PendingInbound {
  readonly id: string
  readonly sessionKey: string
  readonly message: InboundMessage
  /** The reply the turn produced before the stop, if it got that far. */
  readonly reply: string | undefined
  /** How the reply was cut the first time. */
  readonly chunk: Chunking | undefined
}

/** A durable journal record could not be written (or synced): what it would have guarded must not happen. */
export class JournalWriteFailed extends Schema.TaggedError<JournalWriteFailed>()("JournalWriteFailed", {
  file: Schema.String,
  message: Schema.String
}) {}

export interface ChannelJournal extends DeliveryLog {
  readonly dir: string
  /** On disk before it succeeds; on failure the message is not open. */
  readonly accepted: (id: string, sessionKey: string, message: InboundMessage) => Effect.Effect<void, JournalWriteFailed>
  /** On disk before it succeeds; on failure the reply is not recorded. */
  readonly replied: (id: string, text: string, chunk: Chunking) => Effect.Effect<void, JournalWriteFailed>
  readonly done: (id: string) => Effect.Effect<void>
  /** Accepted and not done yet (in this process or left by the last one). */
  readonly isOpen: (id: string) => boolean
  /** The messages found unfinished at load. */
  readonly pending: ReadonlyArray<PendingInbound>
}

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

const joinLines = (lines: ReadonlyArray<string>): string => lines.length === 0 ? "" : lines.join("\n") + "\n"

const readLines = (file: string) =>
  Effect.tryPromise(() => fs.readFile(file, "utf8")).pipe(
    Effect.map((text) => text.split("\n").filter((line) => line.trim() !== "")),
    Effect.catch(() => Effect.succeed<ReadonlyArray<string>>([]))
  )

/** Opens (creating) the journal of one account. */
/** Appends between two compactions of a long-lived journal. */
export const COMPACT_EVERY = 5_000

export interface OpenOptions {
  readonly compactEvery?: number
  /** How the files are opened for appending (a test hands in a failing disk). */
  readonly log?: AppendLogOptions
}

export const open = Effect.fn("ChannelJournal.open")(function*(home: string, channel: string, accountId: string, options: OpenOptions = {}): Effect.fn.Return<ChannelJournal, never, Scope.Scope> {
  const dir = path.join(home, "channels", channel, accountId)
  const inboxFile = path.join(dir, "inbox.jsonl")
  const deliveredFile = path.join(dir, "delivered.jsonl")
  const deadFile = path.join(dir, "dead-letter.jsonl")
  yield* Effect.tryPromise(() => fs.mkdir(dir, { recursive: true, mode: 0o700 })).pipe(Effect.orDie)
  const now = yield* Clock.currentTimeMillis

  // Inbox: fold the records into what is still open.
  const open = new Map<string, { sessionKey: string; message: InboundMessage; reply: string | undefined; chunk: Chunking | undefined; at: number }>()
  let skipped = 0
  for (const line of yield* readLines(inboxFile)) {
    const record = decodeInbox(line)
    if (record._tag === "Failure") {
      skipped++
      continue
    }
    const r = record.success
    if (r.t === "accepted") open.set(r.id, { sessionKey: r.sessionKey, message: r.message, reply: undefined, chunk: undefined, at: r.at })
    else if (r.t === "reply") {
      const entry = open.get(r.id)
      if (entry !== undefined) {
        entry.reply = r.text
        entry.chunk = r.chunk
      }
    } else open.delete(r.id)
  }
  // Delivered keys: the recent ones, newest last.
  const delivered = new Map<string, string>()
  const deliveredAt = new Map<string, number>()
  const deliveredLines: Array<string> = []
  // At-most-once pieces attempted and neither sent nor known to have failed before reaching the platform.
  const attempts = new Map<string, number>()
  for (const line of yield* readLines(deliveredFile)) {
    const record = decodeDelivered(line)
    if (record._tag === "Failure") {
      skipped++
      continue
    }
    const r = record.success
    if (now - r.at > DELIVERED_TTL_MS) continue
    if ("a" in r) {
      if (r.a === 1) attempts.set(r.k, r.at)
      else attempts.delete(r.k)
      continue
    }
    attempts.delete(r.k)
    delivered.set(r.k, r.m)
    deliveredAt.set(r.k, r.at)
    deliveredLines.push(line)
  }
  const attemptLines = () => [...attempts].map(([k, at]) => JSON.stringify({ k, a: 1, at }))
  if (skipped > 0) yield* Effect.logWarning(`channel journal ${dir}: skipped ${skipped} unreadable line(s) (a torn write at a crash, or a hand edit)`)

  // Compact: rewrite both files with only what is still needed (temp file + rename, so a crash keeps the old one).
  const rewrite = (file: string, lines: ReadonlyArray<string>) =>
    Effect.tryPromise(() => writeFileAtomic(file, joinLines(lines))).pipe(Effect.catch((error) => Effect.logWarning(`channel journal: could not compact ${file}: ${describe(error)}`)))
  const inboxLines: Array<string> = []
  for (const [id, entry] of open) {
    inboxLines.push(JSON.stringify({ t: "accepted", id, at: entry.at, sessionKey: entry.sessionKey, message: entry.message }))
    if (entry.reply !== undefined) inboxLines.push(JSON.stringify({ t: "reply", id, at: entry.at, text: entry.reply, ...(entry.chunk === undefined ? {} : { chunk: entry.chunk }) }))
  }
  yield* rewrite(inboxFile, inboxLines)
  yield* rewrite(deliveredFile, [...deliveredLines.slice(-DELIVERED_MAX), ...attemptLines()])

  // One writer per file keeps lines whole and in order; the files stay open while the journal lives.
  const openLog = (file: string) =>
    Effect.acquireRelease(
      Effect.tryPromise(() => openAppendLog(file, options.log)).pipe(Effect.orDie),
      (log) => Effect.promise(() => log.close())
    )
  const inboxLog = yield* openLog(inboxFile)
  const deliveredLog = yield* openLog(deliveredFile)
  const deadLog = yield* openLog(deadFile)
  // While the process runs, the files are rewritten every `compactEvery` appends with only what is still
  // needed (open messages, delivery keys younger than the TTL), so a long-lived gateway does not grow them.
  const live = new Map(open)
  let appends = 0
  // The snapshots are taken when the swap runs, after the appends queued before it: records that reach
  // memory meanwhile are in the snapshot and may also follow it in the file, which replays the same.
  const compactNow = Effect.gen(function*() {
    appends = 0
    const at = yield* Clock.currentTimeMillis
    for (const [key, sentAt] of deliveredAt) {
      if (at - sentAt <= DELIVERED_TTL_MS) continue
      deliveredAt.delete(key)
      delivered.delete(key)
    }
    for (const [key, attemptAt] of attempts) if (at - attemptAt > DELIVERED_TTL_MS) attempts.delete(key)
    const inbox = () => {
      const lines: Array<string> = []
      for (const [id, entry] of live) {
        lines.push(JSON.stringify({ t: "accepted", id, at: entry.at, sessionKey: entry.sessionKey, message: entry.message }))
        if (entry.reply !== undefined) lines.push(JSON.stringify({ t: "reply", id, at: entry.at, text: entry.reply, ...(entry.chunk === undefined ? {} : { chunk: entry.chunk }) }))
      }
      return joinLines(lines)
    }
    const deliveredNow = () => joinLines([...[...deliveredAt].map(([k, sentAt]) => JSON.stringify({ k, m: delivered.get(k) ?? "", at: sentAt })), ...attemptLines()])
    yield* swap(inboxLog, inbox)
    yield* swap(deliveredLog, deliveredNow)
  })
  const swap = (log: AppendLog, content: () => string) =>
    Effect.tryPromise(() => log.replace(content)).pipe(Effect.catch((error) => Effect.logWarning(`channel journal: could not compact ${log.file}: ${describe(error)}`)))
  const counted = Effect.suspend(() => ++appends >= (options.compactEvery ?? COMPACT_EVERY) ? compactNow : Effect.void)
  /** A best-effort record: a failure is logged and costs at most a replay that finds nothing to do. */
  const append = (log: AppendLog, value: unknown) =>
    Effect.tryPromise(() => log.append(JSON.stringify(value) + "\n")).pipe(
      Effect.catch((error) => Effect.logError(`channel journal: could not append to ${log.file}: ${describe(error)}`)),
      Effect.andThen(counted)
    )
  /** A durable record: on disk when it succeeds, a typed failure otherwise. */
  const record = (log: AppendLog, value: unknown) =>
    Effect.tryPromise({
      try: () => log.append(JSON.stringify(value) + "\n", true),
      catch: (error) => new JournalWriteFailed({ file: log.file, message: describe(error) })
    }).pipe(Effect.andThen(counted))
  const stamp = <A, E>(f: (at: number) => Effect.Effect<A, E>) => Effect.flatMap(Clock.currentTimeMillis, f)

  const openIds = new Set(open.keys())
  const journal: ChannelJournal = {
    dir,
    isOpen: (id) => openIds.has(id),
    pending: [...open].map(([id, entry]) => ({ id, sessionKey: entry.sessionKey, message: entry.message, reply: entry.reply, chunk: entry.chunk })),
    accepted: (id, sessionKey, message) =>
      stamp((at) => {
        // Open at once, so a redelivery meanwhile is a duplicate; not open if it never reached the disk.
        openIds.add(id)
        live.set(id, { sessionKey, message, reply: undefined, chunk: undefined, at })
        return record(inboxLog, { t: "accepted", id, at, sessionKey, message }).pipe(
          Effect.tapError(() =>
            Effect.sync(() => {
              openIds.delete(id)
              live.delete(id)
            })
          )
        )
      }),
    replied: (id, text, chunk) =>
      stamp((at) =>
        Effect.andThen(record(inboxLog, { t: "reply", id, at, text, chunk }), Effect.sync(() => {
          const entry = live.get(id)
          if (entry !== undefined) {
            entry.reply = text
            entry.chunk = chunk
          }
        }))
      ),
    done: (id) =>
      stamp((at) => {
        openIds.delete(id)
        live.delete(id)
        return append(inboxLog, { t: "done", id, at })
      }),
    sent: (key) => Effect.sync(() => delivered.get(key)),
    markSent: (key, messageId) =>
      stamp((at) => {
        attempts.delete(key)
        delivered.set(key, messageId)
        deliveredAt.set(key, at)
        return record(deliveredLog, { k: key, m: messageId, at })
      }),
    attempting: (key) =>
      stamp((at) => {
        attempts.set(key, at)
        return record(deliveredLog, { k: key, a: 1, at }).pipe(Effect.tapError(() => Effect.sync(() => attempts.delete(key))))
      }),
    // Not synced: losing it after a power cut only turns a safe retry into a dead letter.
    attemptFailed: (key) =>
      stamp((at) => {
        attempts.delete(key)
        return append(deliveredLog, { k: key, a: 0, at })
      }),
    attempted: (key) => Effect.sync(() => attempts.has(key)),
    deadLetter: (entry: DeadLetter) => append(deadLog, entry)
  }
  return journal
})
