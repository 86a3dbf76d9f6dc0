/**
 * What a session does, independent of where it is hosted: load its state from
 * the store, and handle one mailbox message at a time. The local host
 * (Sessions.ts) and, later, a cluster entity both drive this same behaviour.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Queue, Schema } from "effect"
import { AgentDirectory, type SessionPolicy, type UnknownAgent } from "../agent/AgentDirectory.ts"
import { type AssistantMessage, emptyUsage, type Usage } from "../agent/Message.ts"
import type { AgentSettings } from "../agent/AgentSettings.ts"
import type { ThinkingLevel } from "../provider/Provider.ts"
import { compactIfNeeded, runTurn, type TurnError, type TurnInput, type TurnSession } from "../agent/RunLoop.ts"
import * as Compaction from "../agent/Compaction.ts"
import { SessionCrashed, type SessionUnavailable, TurnAborted, type TurnEvent, TurnTimeout } from "../agent/TurnEvent.ts"
import type { ProviderError } from "../provider/Provider.ts"
import type * as SessionKey from "./SessionKey.ts"
import { type AppendOptions, carriedOverOnReset, type DeliveryContext, emptySessionEntry, type SessionEntry, SessionStore, type StoreError } from "./SessionStore.ts"
import type * as RunLane from "./RunLane.ts"
import * as Transcript from "./Transcript.ts"

/** The session's state could not be read from the store; restarting will not help until the store is fixed. */
export class LoadFailed extends Schema.TaggedError<LoadFailed>()("LoadFailed", {
  sessionKey: Schema.String,
  message: Schema.String
}) {}

/**
 * The session is no longer the one a caller read (reset or replaced since):
 * OpenClaw's SESSION_CHANGED. Checked where the change is made, in turn with
 * the session's other mail, so a reset queued ahead of the change is seen.
 */
export class SessionChanged extends Schema.TaggedError<SessionChanged>()("SessionChanged", {
  sessionKey: Schema.String,
  expectedSessionId: Schema.String,
  message: Schema.String
}) {}

const sessionChanged = (sessionKey: string, expectedSessionId: string) =>
  new SessionChanged({ sessionKey, expectedSessionId, message: `Session changed: ${sessionKey} is no longer session ${expectedSessionId}; re-read it and retry` })

export type TurnFailure = TurnError | TurnAborted | SessionCrashed | SessionUnavailable | UnknownAgent | StoreError

export type Envelope =
  | {
    readonly _tag: "Turn"
    readonly input: TurnInput
    readonly events: Queue.Queue<TurnEvent, TurnFailure | Cause.Done>
    /** Completed by abort or by a caller that went away. */
    readonly cancel: Deferred.Deferred<void>
  }
  | { readonly _tag: "Reset"; readonly reply: Deferred.Deferred<SessionEntry, StoreError | SessionUnavailable> }
  | { readonly _tag: "History"; readonly reply: Deferred.Deferred<ReadonlyArray<Transcript.Entry>, SessionUnavailable> }
  | {
    readonly _tag: "Patch"
    readonly patch: SessionPatch
    /** Applies only while the session is still this one (OpenClaw's expectedSessionId). */
    readonly expectedSessionId?: string | undefined
    readonly reply: Deferred.Deferred<SessionEntry, StoreError | SessionUnavailable | SessionChanged>
  }
  | { readonly _tag: "Inject"; readonly text: string; readonly label: string | undefined; readonly reply: Deferred.Deferred<{ readonly messageId: string }, StoreError | Transcript.TranscriptInvariantError | SessionUnavailable | UnknownAgent> }
  | {
    readonly _tag: "Delete"
    readonly deleteTranscript: boolean
    /** Deletes only while the session is still this one (OpenClaw's expectedSessionId). */
    readonly expectedSessionId?: string | undefined
    readonly reply: Deferred.Deferred<{ readonly deleted: boolean }, StoreError | SessionUnavailable | SessionChanged>
  }
  | { readonly _tag: "Compact"; readonly instructions: string | undefined; readonly reply: Deferred.Deferred<CompactOutcome, CompactFailure> }

/** What an on-demand compaction did: summarised older history, or nothing and why. */
export type CompactOutcome =
  | {
    readonly compacted: true
    /** Context before: the last model call's, else estimated from the history. */
    readonly tokensBefore: number
    /** Estimated: `tokensBefore` less what was summarised, plus the summary. */
    readonly tokensAfter: number
    /** Estimated size of the messages the summary replaces. */
    readonly summarisedTokens: number
    readonly summaryChars: number
  }
  | {
    readonly compacted: false
    /** `no transcript` (nothing said yet), `already compacted` (nothing new since the last summary), `too little history` (it all fits in the recent part compaction keeps). */
    readonly reason: "no transcript" | "already compacted" | "too little history"
  }
export type CompactFailure = ProviderError | StoreError | Transcript.TranscriptInvariantError | TurnTimeout | UnknownAgent | SessionUnavailable

/** Per-session settings a client may change (OpenClaw's sessions.patch); `null` clears one. */
export interface SessionPatch {
  readonly label?: string | null | undefined
  readonly thinkingLevel?: "off" | "minimal" | "low" | "medium" | "high" | "xhigh" | null | undefined
  /** A `provider/model` id used instead of the agent's primary model. */
  readonly modelOverride?: string | null | undefined
  /** The last route (a channel message reached the session); never set by clients. */
  readonly lastRoute?: DeliveryContext | undefined
}

/** The index fields of a last route, under OpenClaw's names. */
export const routeFields = (route: DeliveryContext): Pick<SessionEntry, "lastChannel" | "lastTo" | "lastAccountId" | "lastThreadId" | "deliveryContext"> => ({
  lastChannel: route.channel,
  lastTo: route.to,
  ...(route.accountId === undefined ? {} : { lastAccountId: route.accountId }),
  ...(route.threadId === undefined ? {} : { lastThreadId: route.threadId }),
  deliveryContext: route
})

const sameRoute = (entry: SessionEntry, route: DeliveryContext): boolean =>
  entry.lastChannel === route.channel && entry.lastTo === route.to && entry.lastAccountId === route.accountId &&
  entry.lastThreadId === route.threadId && entry.deliveryContext?.channel === route.channel && entry.deliveryContext.to === route.to &&
  entry.deliveryContext.accountId === route.accountId && entry.deliveryContext.threadId === route.threadId

const applyPatch = (entry: SessionEntry, patch: SessionPatch): SessionEntry => {
  const next: { -readonly [K in keyof SessionEntry]: SessionEntry[K] } = { ...entry }
  if (patch.label === null) delete next.label
  else if (patch.label !== undefined) next.label = patch.label
  if (patch.thinkingLevel === null) delete next.thinkingLevel
  else if (patch.thinkingLevel !== undefined) next.thinkingLevel = patch.thinkingLevel
  if (patch.modelOverride === null) delete next.modelOverride
  else if (patch.modelOverride !== undefined) next.modelOverride = patch.modelOverride
  if (patch.lastRoute !== undefined) {
    delete next.lastAccountId
    delete next.lastThreadId
    Object.assign(next, routeFields(patch.lastRoute))
  }
  return next
}

const THINKING_LEVELS: ReadonlySet<string> = new Set<ThinkingLevel>(["off", "minimal", "low", "medium", "high", "xhigh"])
const isThinkingLevel = (level: string): level is ThinkingLevel => THINKING_LEVELS.has(level)

/** The agent's settings with this session's own choices (model, thinking) on top. */
export const sessionSettings = (settings: AgentSettings, entry: SessionEntry): AgentSettings =>
  entry.modelOverride === undefined && entry.thinkingLevel === undefined ? settings : {
    ...settings,
    ...(entry.modelOverride === undefined ? {} : { modelChain: [entry.modelOverride, ...settings.modelChain.filter((id) => id !== entry.modelOverride)] }),
    ...(entry.thinkingLevel !== undefined && isThinkingLevel(entry.thinkingLevel) ? { thinking: entry.thinkingLevel } : {})
  }

/** A turn's own model first, the session's chain after it as fallbacks. */
const turnModel = (settings: AgentSettings, model: string | undefined): AgentSettings =>
  model === undefined ? settings : { ...settings, modelChain: [model, ...settings.modelChain.filter((id) => id !== model)] }

export interface SessionState {
  readonly key: SessionKey.ParsedSessionKey
  entry: SessionEntry
  entries: Array<Transcript.Entry>
  /** Entry ids in the transcript, so a new id never collides with an old one. */
  ids: Set<string>
  /** Whether the transcript file exists (its header is written). */
  headerWritten: boolean
}

const freshEntry = (agentId: string, now: number): SessionEntry => emptySessionEntry(crypto.randomUUID(), agentId, now)

/** What the model is asked when a reset trigger arrives on its own, as OpenClaw's short greeting turn. */
export const NEW_SESSION_GREETING = "A new session has just started. Greet the user in one short sentence and ask what they would like to do."

/** `/new` or `/reset` (or a configured trigger) at the start of a message; the rest is passed on. */
export const matchResetTrigger = (text: string, triggers: ReadonlyArray<string>): { readonly trigger: string; readonly rest: string } | undefined => {
  const trimmed = text.trim()
  for (const trigger of triggers) {
    if (trimmed === trigger) return { trigger, rest: "" }
    if (trimmed.startsWith(`${trigger} `) || trimmed.startsWith(`${trigger}\n`)) return { trigger, rest: trimmed.slice(trigger.length).trim() }
  }
  return undefined
}

/** OpenClaw's freshness rule: daily at `atHour` local time, or after `idleMinutes` without a turn. */
export const isStale = (entry: SessionEntry, policy: SessionPolicy["reset"], now: Date): boolean => {
  if (entry.turnCount === 0) return false
  if (policy.idleMinutes !== undefined && policy.idleMinutes > 0 && now.getTime() - entry.updatedAt > policy.idleMinutes * 60_000) return true
  if (policy.mode === "daily") {
    const boundary = new Date(now)
    boundary.setHours(policy.atHour, 0, 0, 0)
    if (boundary.getTime() > now.getTime()) boundary.setDate(boundary.getDate() - 1)
    return entry.sessionStartedAt < boundary.getTime()
  }
  return false
}

// Untraced, as the run loop and `handle`: each session load (every one-shot OpenAI request has one) would pay
// a span and a captured stack for a trace nobody collects.
export const load = Effect.fnUntraced(function*(key: SessionKey.ParsedSessionKey) {
  const store = yield* SessionStore
  const existing = yield* store.getEntry(key.key)
  const now = yield* Clock.currentTimeMillis
  if (existing === undefined) {
    return { key, entry: freshEntry(key.agentId, now), entries: [], ids: new Set(), headerWritten: false } satisfies SessionState
  }
  let entry = existing
  if (existing.agentId !== key.agentId) {
    // The key names the agent; an index entry that disagrees was edited by hand.
    yield* Effect.logWarning(`session index entry for ${key.key} names agent ${JSON.stringify(existing.agentId)}; using ${key.agentId} from the key`)
    entry = { ...existing, agentId: key.agentId }
  }
  const loaded = yield* store.loadTranscript(entry.agentId, entry.sessionId, key.key)
  if (loaded.exists && loaded.header.key !== undefined && loaded.header.key !== key.key) {
    // The transcript is another session's (an index edited by hand, two keys naming one session id): reading it
    // would hand that conversation to this one, and both would write one file. This key starts afresh.
    const fresh: SessionEntry = { ...freshEntry(key.agentId, now), ...carriedOverOnReset(entry) }
    yield* Effect.logWarning(`the index entry of ${key.key} names session ${entry.sessionId}, whose transcript belongs to ${loaded.header.key}; ${key.key} starts a fresh session ${fresh.sessionId}`)
    yield* store.putEntry(key.key, fresh)
    return { key, entry: fresh, entries: [], ids: new Set(), headerWritten: false } satisfies SessionState
  }
  if (!loaded.exists && entry.turnCount > 0) {
    yield* Effect.logWarning(`transcript ${entry.sessionId}.jsonl of ${key.key} is missing although the index counts ${entry.turnCount} turns; the session continues without that history`)
  }
  return {
    key,
    entry,
    entries: [...loaded.entries],
    ids: new Set(loaded.entries.map((e) => e.id)),
    headerWritten: loaded.exists
  } satisfies SessionState
})

/**
 * Reset or Delete of a session that cannot be loaded (a transcript too large
 * to read, one the process may not read): done from the index alone, so the
 * key is never stuck. The transcript is set aside unread, as these always do.
 */
export const withoutLoading = Effect.fnUntraced(function*(key: SessionKey.ParsedSessionKey, envelope: Extract<Envelope, { readonly _tag: "Reset" | "Delete" }>) {
  const store = yield* SessionStore
  const setAside = (reason: "reset" | "deleted") =>
    Effect.gen(function*() {
      const entry = yield* store.getEntry(key.key)
      if (entry !== undefined) yield* store.archiveTranscript(key.agentId, entry.sessionId, reason)
      return entry
    })
  if (envelope._tag === "Delete") {
    return yield* Deferred.complete(envelope.reply, Effect.gen(function*() {
      const expected = envelope.expectedSessionId
      if (expected !== undefined && (yield* store.getEntry(key.key))?.sessionId !== expected) return yield* sessionChanged(key.key, expected)
      const entry = yield* setAside("deleted")
      yield* store.deleteEntry(key.key)
      return { deleted: entry !== undefined }
    }))
  }
  return yield* Deferred.complete(envelope.reply, Effect.gen(function*() {
    const entry = yield* setAside("reset")
    const fresh: SessionEntry = { ...freshEntry(key.agentId, yield* Clock.currentTimeMillis), ...(entry === undefined ? {} : carriedOverOnReset(entry)) }
    yield* store.putEntry(key.key, fresh)
    yield* Effect.logInfo(`session ${key.key} started anew (reset) without loading its transcript, which was archived unread`)
    return fresh
  }))
})

const startNewSession = Effect.fnUntraced(function*(state: SessionState, reason: "reset" | "stale") {
  const store = yield* SessionStore
  const previous = state.entry
  if (state.headerWritten) yield* store.archiveTranscript(previous.agentId, previous.sessionId, "reset")
  const now = yield* Clock.currentTimeMillis
  state.entry = { ...freshEntry(state.key.agentId, now), ...carriedOverOnReset(previous) }
  state.entries = []
  state.ids = new Set()
  state.headerWritten = false
  yield* store.putEntry(state.key.key, state.entry)
  yield* Effect.logInfo(`session ${state.key.key} started anew (${reason}); previous transcript archived`)
  return state.entry
})

/**
 * The one way a turn writes: checks the tool-call invariant, writes the
 * lines, then updates memory. Uninterruptible, so memory and disk never
 * disagree about what was appended.
 */
const persistFor = (store: SessionStore["Service"], state: SessionState, workspace: string) =>
  (entries: ReadonlyArray<Transcript.Entry>, options?: AppendOptions) =>
    Effect.uninterruptible(Effect.gen(function*() {
      // Checked as a batch from the current tail: no copies of the history per entry.
      const checked: Array<Transcript.Entry> = []
      const batchIds = new Set<string>()
      const taken = (id: string) => state.ids.has(id) || batchIds.has(id)
      let pending = Transcript.pendingToolCalls(state.entries)
      let lastId = state.entries.at(-1)?.id ?? null
      for (const entry of entries) {
        let id = entry.id
        while (taken(id)) id = crypto.randomUUID().slice(0, 8)
        const placed = { ...entry, id, parentId: entry.parentId === null ? lastId : entry.parentId }
        const step = Transcript.stepPending(pending, placed)
        if (step instanceof Transcript.TranscriptInvariantError) return yield* step
        pending = step
        batchIds.add(id)
        checked.push(placed)
        lastId = id
      }
      if (!state.headerWritten) {
        yield* store.createTranscript(state.entry.agentId, {
          type: "session",
          version: Transcript.TRANSCRIPT_VERSION,
          id: state.entry.sessionId,
          timestamp: new Date(state.entry.sessionStartedAt).toISOString(),
          cwd: workspace,
          key: state.key.key,
          agentId: state.entry.agentId
        }, { background: options?.background === true })
        state.headerWritten = true
      }
      yield* store.append(state.entry.agentId, state.entry.sessionId, checked, options)
      state.entries.push(...checked)
      for (const id of batchIds) state.ids.add(id)
    }))

/** Usage is added as each model call completes, so an aborted or failed turn still counts what it spent. */
const addUsage = (state: SessionState) => (usage: Usage, model: string) =>
  Effect.sync(() => {
    const slash = model.indexOf("/")
    state.entry = {
      ...state.entry,
      inputTokens: state.entry.inputTokens + usage.input,
      outputTokens: state.entry.outputTokens + usage.output,
      cacheRead: state.entry.cacheRead + usage.cacheRead,
      cacheWrite: state.entry.cacheWrite + usage.cacheWrite,
      totalTokens: state.entry.totalTokens + usage.totalTokens,
      contextTokens: usage.input + usage.cacheRead + usage.cacheWrite + usage.output,
      ...(slash > 0 ? { modelProvider: model.slice(0, slash), model: model.slice(slash + 1) } : {})
    }
  })

const finishTurn = (state: SessionState, outcome: { readonly completed: boolean; readonly aborted: boolean }) =>
  Effect.gen(function*() {
    const store = yield* SessionStore
    const now = yield* Clock.currentTimeMillis
    state.entry = {
      ...state.entry,
      updatedAt: now,
      turnCount: state.entry.turnCount + (outcome.completed ? 1 : 0),
      compactionCount: state.entries.filter((e) => e.type === "compaction").length,
      abortedLastRun: outcome.aborted
    }
    yield* store.putEntry(state.key.key, state.entry)
  })

/** After a failed turn, memory is rebuilt from disk: the transcript is the truth, and loading repairs it. */
const reload = (state: SessionState) =>
  load(state.key).pipe(Effect.tap((fresh) => Effect.sync(() => Object.assign(state, fresh))))

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? squashed.message : String(squashed)
}

/**
 * Compaction on demand (`/compact`, `sessions.compact`): the history before
 * the recent tail that compaction keeps is summarised into a compaction entry
 * now. It runs as an envelope, so never beside a turn. The one write is the
 * entry itself, after the summary came back: a failed or timed-out model call
 * leaves the transcript as it was.
 */
const compactNow = (state: SessionState, instructions: string | undefined) =>
  Effect.gen(function*() {
    const store = yield* SessionStore
    const agents = yield* AgentDirectory
    const lastCompaction = state.entries.findLastIndex((e) => e.type === "compaction")
    if (!state.entries.some((e) => e.type === "message")) return { compacted: false, reason: "no transcript" } satisfies CompactOutcome
    if (lastCompaction >= 0 && !state.entries.slice(lastCompaction + 1).some((e) => e.type === "message")) {
      return { compacted: false, reason: "already compacted" } satisfies CompactOutcome
    }
    const settings = sessionSettings(yield* agents.settings(state.key.agentId), state.entry)
    const plan = Compaction.summarisable(state.entries, settings.keepRecentTokens)
    if (plan.previous.messages.length === 0) return { compacted: false, reason: "too little history" } satisfies CompactOutcome
    let estimated = plan.tokens
    for (const message of Transcript.contextMessages(state.entries.slice(plan.keepFrom)).messages) estimated += Compaction.estimateTokens(message)
    const tokensBefore = state.entry.contextTokens > 0 ? state.entry.contextTokens : estimated
    const session = { entries: Effect.sync(() => state.entries), persist: persistFor(store, state, settings.workspace), addUsage: addUsage(state) }
    const entry = yield* Compaction.compact(session, settings, tokensBefore, instructions).pipe(
      // A summary that never comes must not hold the session's mailbox forever.
      Effect.timeoutOrElse({
        duration: Duration.seconds(settings.timeoutSeconds),
        orElse: () => Effect.fail(new TurnTimeout({ sessionKey: state.key.key, timeoutSeconds: settings.timeoutSeconds, message: `the compaction took longer than ${settings.timeoutSeconds}s and was stopped; the history is unchanged` }))
      }),
      // The summary's usage is already counted in memory; it reaches the index whatever happened.
      Effect.ensuring(Effect.suspend(() => store.putEntry(state.key.key, state.entry)).pipe(Effect.ignore))
    )
    if (entry === undefined) return { compacted: false, reason: "too little history" } satisfies CompactOutcome
    const summaryTokens = Math.ceil(entry.summary.length / 4)
    const tokensAfter = Math.max(0, tokensBefore - plan.tokens) + summaryTokens
    state.entry = {
      ...state.entry,
      compactionCount: state.entries.filter((e) => e.type === "compaction").length,
      contextTokens: tokensAfter
    }
    yield* store.putEntry(state.key.key, state.entry)
    return { compacted: true, tokensBefore, tokensAfter, summarisedTokens: plan.tokens, summaryChars: entry.summary.length } satisfies CompactOutcome
  })

/**
 * Handles one envelope. Every Turn ends its caller's stream, whatever
 * happens. Typed failures leave the actor running (its memory reloaded from
 * disk); a defect is reported to the caller and re-raised, so the host
 * restarts the session from what is on disk.
 */
export const handle = Effect.fnUntraced(function*(state: SessionState, envelope: Envelope, lane: RunLane.RunLane) {
  const store = yield* SessionStore
  const agents = yield* AgentDirectory
  switch (envelope._tag) {
    case "History":
      return yield* Deferred.succeed(envelope.reply, [...state.entries])
    case "Reset":
      return yield* Deferred.complete(envelope.reply, Effect.exit(startNewSession(state, "reset")).pipe(Effect.flatten))
    case "Patch":
      return yield* Deferred.complete(envelope.reply, Effect.gen(function*() {
        const expected = envelope.expectedSessionId
        if (expected !== undefined && state.entry.sessionId !== expected) return yield* sessionChanged(state.key.key, expected)
        // A channel records its route on every message; the index is written only when it changed.
        const { lastRoute, ...rest } = envelope.patch
        if (lastRoute !== undefined && sameRoute(state.entry, lastRoute) && Object.values(rest).every((value) => value === undefined)) return state.entry
        state.entry = applyPatch(state.entry, envelope.patch)
        yield* store.putEntry(state.key.key, state.entry)
        return state.entry
      }))
    case "Inject":
      return yield* Deferred.complete(envelope.reply, Effect.gen(function*() {
        const settings = yield* agents.settings(state.key.agentId)
        const now = yield* Clock.currentTimeMillis
        const message: AssistantMessage = {
          role: "assistant",
          content: [{ type: "text", text: envelope.label === undefined ? envelope.text : `[${envelope.label}] ${envelope.text}` }],
          provider: "beamclaw",
          model: "inject",
          usage: emptyUsage,
          stopReason: "stop",
          timestamp: now
        }
        yield* persistFor(store, state, settings.workspace)([Transcript.messageEntry(message, null)], { sync: true })
        state.entry = { ...state.entry, updatedAt: now }
        yield* store.putEntry(state.key.key, state.entry)
        return { messageId: state.entries.at(-1)?.id ?? "" }
      }))
    case "Delete":
      return yield* Deferred.complete(envelope.reply, Effect.gen(function*() {
        const expected = envelope.expectedSessionId
        if (expected !== undefined && state.entry.sessionId !== expected) return yield* sessionChanged(state.key.key, expected)
        const existed = (yield* store.getEntry(state.key.key)) !== undefined || state.headerWritten
        if (state.headerWritten) yield* store.archiveTranscript(state.entry.agentId, state.entry.sessionId, "deleted")
        yield* store.deleteEntry(state.key.key)
        const now = yield* Clock.currentTimeMillis
        state.entry = freshEntry(state.key.agentId, now)
        state.entries = []
        state.ids = new Set()
        state.headerWritten = false
        return { deleted: existed }
      }))
    case "Compact":
      return yield* Deferred.complete(envelope.reply, compactNow(state, envelope.instructions).pipe(lane.withSlot))
    case "Turn": {
      if (yield* Deferred.isDone(envelope.cancel)) {
        return yield* Queue.fail(envelope.events, new TurnAborted({ sessionKey: state.key.key, message: "the turn was cancelled before it started" }))
      }
      let turnSession: TurnSession | undefined
      let turnSettings: AgentSettings | undefined
      const turn = Effect.gen(function*() {
        const startDone = yield* lane.starting
        const policy = yield* agents.sessionPolicy
        const fresh = envelope.input.newSession
        // A turn that asks for a fresh session carries its message already stripped of the command.
        const trigger = fresh === undefined ? matchResetTrigger(envelope.input.text, policy.resetTriggers) : undefined
        if (fresh !== undefined) {
          yield* startNewSession(state, "reset")
          if (fresh.model !== undefined) {
            state.entry = applyPatch(state.entry, { modelOverride: fresh.model })
            yield* store.putEntry(state.key.key, state.entry)
          }
        } else if (trigger !== undefined) yield* startNewSession(state, "reset")
        else if (isStale(state.entry, policy.reset, new Date(yield* Clock.currentTimeMillis))) yield* startNewSession(state, "stale")
        const input = trigger === undefined ? envelope.input : { ...envelope.input, text: trigger.rest === "" ? NEW_SESSION_GREETING : trigger.rest }
        const chosen = turnModel(sessionSettings(yield* agents.settings(state.key.agentId), state.entry), envelope.input.modelOverride)
        const settings = envelope.input.thinking === undefined ? chosen : { ...chosen, thinking: envelope.input.thinking }
        yield* Queue.offer(envelope.events, { _tag: "TurnStarted", runId: envelope.input.runId, sessionKey: state.key.key, sessionId: state.entry.sessionId })
        turnSettings = settings
        turnSession = {
          key: state.key.key,
          agentId: state.key.agentId,
          sessionId: state.entry.sessionId,
          kind: state.key.kind,
          entries: Effect.sync(() => state.entries),
          persist: persistFor(store, state, settings.workspace),
          addUsage: addUsage(state),
          answerStarted: startDone
        }
        return yield* runTurn(turnSession, settings, input, emit)
      })
      const emit = (event: TurnEvent) => Queue.offer(envelope.events, event).pipe(Effect.asVoid)
      // The error is built only if the turn is aborted: an error captures a stack trace.
      const cancelled = Deferred.await(envelope.cancel).pipe(
        Effect.andThen(Effect.failSync(() => new TurnAborted({ sessionKey: state.key.key, message: "the turn was aborted" })))
      )
      // The session's turn, then a slot in the global lane (OpenClaw's order): held for the turn and the compaction
      // after it. An abort also ends the wait for the slot.
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.raceFirst(Effect.andThen(lane.hold, turn), cancelled))
        // The caller was woken by the turn's last event, through the scheduler: it goes first, and
        // answers before the bookkeeping of the turn's end (compaction check, lane, index) runs.
        yield* Effect.yieldNow
        if (Exit.isSuccess(exit) && turnSession !== undefined && turnSettings !== undefined) yield* compactIfNeeded(turnSession, turnSettings, exit.value, emit)
        return exit
      }))
      if (Exit.isSuccess(exit)) {
        yield* finishTurn(state, { completed: true, aborted: false }).pipe(Effect.catchCause((cause) => Effect.logError(`could not update the index for ${state.key.key}`, cause)))
        return yield* Queue.end(envelope.events)
      }
      const error = Cause.findError(exit.cause)
      const aborted = error._tag === "Success" && error.success._tag === "TurnAborted"
      yield* finishTurn(state, { completed: false, aborted }).pipe(Effect.ignore)
      const defect = Cause.findDefect(exit.cause)
      if (defect._tag === "Success") {
        yield* Queue.fail(envelope.events, new SessionCrashed({ sessionKey: state.key.key, message: `the session crashed during the turn and is restarting from its transcript: ${describeCause(exit.cause)}` }))
        return yield* Effect.failCause(exit.cause)
      }
      yield* Queue.fail(envelope.events, error._tag === "Success" ? error.success : new TurnAborted({ sessionKey: state.key.key, message: "the turn was interrupted" }))
      yield* reload(state).pipe(Effect.mapError((error) => new LoadFailed({ sessionKey: state.key.key, message: error.message })))
    }
  }
})
