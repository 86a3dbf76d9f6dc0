/**
 * The SessionStore boundary: the session index (OpenClaw's sessions.json) and
 * one append-only transcript per session. Files are the default Layer; a
 * database-backed store can replace it without touching the actors.
 */
import { Context, type Effect, Schema } from "effect"
import type { Entry, Header } from "./Transcript.ts"

/**
 * Where a session's answers can be sent outside a turn (OpenClaw's
 * `deliveryContext`, the "last route"): the channel, account and target of
 * the last channel message that reached the session.
 */
export const DeliveryContext = Schema.Struct({
  channel: Schema.String,
  /** `user:<id>` for a DM, `channel:<id>` for a guild channel or thread (OpenClaw's OriginatingTo). */
  to: Schema.String,
  accountId: Schema.optionalKey(Schema.String),
  threadId: Schema.optionalKey(Schema.String)
})
export type DeliveryContext = typeof DeliveryContext.Type

export const SessionEntry = Schema.Struct({
  sessionId: Schema.String,
  agentId: Schema.String,
  updatedAt: Schema.Number,
  sessionStartedAt: Schema.Number,
  sessionFile: Schema.optionalKey(Schema.String),
  chatType: Schema.optionalKey(Schema.String),
  channel: Schema.optionalKey(Schema.String),
  label: Schema.optionalKey(Schema.String),
  displayName: Schema.optionalKey(Schema.String),
  model: Schema.optionalKey(Schema.String),
  modelProvider: Schema.optionalKey(Schema.String),
  modelOverride: Schema.optionalKey(Schema.String),
  thinkingLevel: Schema.optionalKey(Schema.String),
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cacheRead: Schema.Number,
  cacheWrite: Schema.Number,
  totalTokens: Schema.Number,
  contextTokens: Schema.Number,
  compactionCount: Schema.Number,
  turnCount: Schema.Number,
  abortedLastRun: Schema.optionalKey(Schema.Boolean),
  // The last route, under OpenClaw's names (index files written before it existed load without it).
  lastChannel: Schema.optionalKey(Schema.String),
  lastTo: Schema.optionalKey(Schema.String),
  lastAccountId: Schema.optionalKey(Schema.String),
  lastThreadId: Schema.optionalKey(Schema.String),
  deliveryContext: Schema.optionalKey(DeliveryContext)
})
export type SessionEntry = typeof SessionEntry.Type

/** The index entry of a session that has not had a turn yet. */
export const emptySessionEntry = (sessionId: string, agentId: string, startedAt: number): SessionEntry => ({
  sessionId,
  agentId,
  updatedAt: startedAt,
  sessionStartedAt: startedAt,
  inputTokens: 0,
  outputTokens: 0,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: 0,
  contextTokens: 0,
  compactionCount: 0,
  turnCount: 0
})

export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  path: Schema.String,
  message: Schema.String
}) {}

export interface LoadedTranscript {
  readonly header: Header
  readonly entries: ReadonlyArray<Entry>
  /** What the load repaired and wrote back; empty for a sound file. */
  readonly repairs: ReadonlyArray<string>
  /** Whether the transcript file exists; a missing one loads as empty. */
  readonly exists: boolean
}

export interface AppendOptions {
  /** The lines are on disk (datasync) when the append returns. */
  readonly sync?: boolean | undefined
  /**
   * The append may return before its lines reach the file, when the file is
   * not open yet (a new transcript, or one closed while idle): they are
   * written in order, before any later append to the same transcript
   * completes, and if they cannot be, the next append fails with the reason.
   * For a write whose caller reaches a synchronous append soon after (a
   * turn's first message, made durable with the turn's last), so the open
   * overlaps the caller's work instead of coming before it.
   */
  readonly background?: boolean | undefined
}

export class SessionStore extends Context.Service<SessionStore, {
  readonly getEntry: (key: string) => Effect.Effect<SessionEntry | undefined, StoreError>
  readonly putEntry: (key: string, entry: SessionEntry) => Effect.Effect<void, StoreError>
  readonly deleteEntry: (key: string) => Effect.Effect<void, StoreError>
  readonly listEntries: (agentId?: string) => Effect.Effect<ReadonlyArray<readonly [string, SessionEntry]>, StoreError>
  /** Creates the transcript with its header line; `background` as for `append`. */
  readonly createTranscript: (agentId: string, header: Header, options?: { readonly background?: boolean }) => Effect.Effect<void, StoreError>
  /** Reads, repairs (writing the repair back) and returns a transcript; a missing file gives an empty one. */
  readonly loadTranscript: (agentId: string, sessionId: string, key: string) => Effect.Effect<LoadedTranscript, StoreError>
  /** Appends entries as whole lines, in order (see AppendOptions). */
  readonly append: (agentId: string, sessionId: string, entries: ReadonlyArray<Entry>, options?: AppendOptions) => Effect.Effect<void, StoreError>
  /** Moves a transcript aside (reset or delete), as OpenClaw's `.reset.<ts>` archives. */
  readonly archiveTranscript: (agentId: string, sessionId: string, reason: "reset" | "deleted") => Effect.Effect<void, StoreError>
  /** Writes pending index changes now. */
  readonly flush: Effect.Effect<void, StoreError>
  /** Waits for the next write of an index (after changes; none while idle): when maintenance looks at the counts. */
  readonly indexWritten: Effect.Effect<void>
  /** Entries per agent, of the indexes loaded so far (an index not loaded has not changed since the start). */
  readonly entryCounts: Effect.Effect<ReadonlyArray<readonly [agentId: string, entries: number]>>
  /** The agents that have sessions stored. */
  readonly storedAgents: Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Where an agent's index is, for reports. */
  readonly indexLocation: (agentId: string) => Effect.Effect<string, StoreError>
  /** What an agent's sessions take on disk, file by file (maintenance's disk budget). */
  readonly storedFiles: (agentId: string) => Effect.Effect<ReadonlyArray<StoredFile>, StoreError>
  /** Erases a session's transcript (maintenance of disposable sessions and the disk budget); a missing one is fine. */
  readonly removeTranscript: (agentId: string, sessionId: string) => Effect.Effect<void, StoreError>
  /** Erases an archived transcript or a repair's backup copy, by the name `storedFiles` gave it. */
  readonly removeStoredFile: (agentId: string, file: StoredFile) => Effect.Effect<void, StoreError>
}>()("beamclaw/session/SessionStore") {}

/** A file of an agent's sessions directory. */
export interface StoredFile {
  readonly name: string
  readonly bytes: number
  /**
   * `transcript` a live `<sessionId>.jsonl`; `archive` one moved aside by a
   * reset or a delete (`.reset.<ts>`, `.deleted.<ts>`); `backup` a copy a
   * repair kept (`.corrupt-<ts>`); `index` sessions.json; `temporary` an
   * atomic write's `.<pid>.<n>.tmp` (left behind by a kill); `other` the rest.
   */
  readonly kind: "index" | "transcript" | "archive" | "backup" | "temporary" | "other"
  /** When it was archived or backed up (from its name), else when it was last written. */
  readonly at: number
}

/** What a new session id keeps from the old entry: its label and its last route (as OpenClaw's reset). */
export const carriedOverOnReset = (previous: SessionEntry): Partial<SessionEntry> => ({
  ...(previous.label === undefined ? {} : { label: previous.label }),
  ...(previous.lastChannel === undefined ? {} : { lastChannel: previous.lastChannel }),
  ...(previous.lastTo === undefined ? {} : { lastTo: previous.lastTo }),
  ...(previous.lastAccountId === undefined ? {} : { lastAccountId: previous.lastAccountId }),
  ...(previous.lastThreadId === undefined ? {} : { lastThreadId: previous.lastThreadId }),
  ...(previous.deliveryContext === undefined ? {} : { deliveryContext: previous.deliveryContext })
})
