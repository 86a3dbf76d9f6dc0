/**
 * What a session does, independent of where it is hosted: load its state from
 * the store, and handle one mailbox message at a time. The local host
 * (Sessions.ts) and, later, a cluster entity both drive this same behaviour.
 */
import { Cause, Deferred, Effect, Exit, Queue } from "effect"
import { AgentDirectory, type SessionPolicy, type UnknownAgent } from "../agent/AgentDirectory.ts"
import { runTurn, type TurnError, type TurnInput, type TurnResult } from "../agent/RunLoop.ts"
import { SessionCrashed, TurnAborted, type TurnEvent } from "../agent/TurnEvent.ts"
import type * as SessionKey from "./SessionKey.ts"
import { emptySessionEntry, type SessionEntry, SessionStore, type StoreError } from "./SessionStore.ts"
import * as Transcript from "./Transcript.ts"

export type TurnFailure = TurnError | TurnAborted | SessionCrashed | UnknownAgent

export type Envelope =
  | {
    readonly _tag: "Turn"
    readonly input: TurnInput
    readonly events: Queue.Queue<TurnEvent, TurnFailure | Cause.Done>
    /** Completed by abort or by a caller that went away. */
    readonly cancel: Deferred.Deferred<void>
  }
  | { readonly _tag: "Reset"; readonly reply: Deferred.Deferred<SessionEntry, StoreError> }
  | { readonly _tag: "History"; readonly reply: Deferred.Deferred<ReadonlyArray<Transcript.Entry>> }

export interface SessionState {
  readonly key: SessionKey.ParsedSessionKey
  entry: SessionEntry
  entries: Array<Transcript.Entry>
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

export const load = Effect.fn("SessionActor.load")(function*(key: SessionKey.ParsedSessionKey) {
  const store = yield* SessionStore
  const existing = yield* store.getEntry(key.key)
  if (existing === undefined) {
    return { key, entry: freshEntry(key.agentId, Date.now()), entries: [], headerWritten: false } satisfies SessionState
  }
  const loaded = yield* store.loadTranscript(existing.agentId, existing.sessionId, key.key)
  return { key, entry: existing, entries: [...loaded.entries], headerWritten: loaded.entries.length > 0 || loaded.repairs.length > 0 } satisfies SessionState
})

const startNewSession = Effect.fnUntraced(function*(state: SessionState, reason: "reset" | "stale") {
  const store = yield* SessionStore
  const previous = state.entry
  if (state.headerWritten) yield* store.archiveTranscript(previous.agentId, previous.sessionId, "reset")
  state.entry = { ...freshEntry(state.key.agentId, Date.now()), ...(previous.label === undefined ? {} : { label: previous.label }) }
  state.entries = []
  state.headerWritten = false
  yield* store.putEntry(state.key.key, state.entry)
  yield* Effect.logInfo(`session ${state.key.key} started anew (${reason}); previous transcript archived`)
  return state.entry
})

const persistFor = (store: SessionStore["Service"], state: SessionState, workspace: string) =>
  Effect.fnUntraced(function*(entries: ReadonlyArray<Transcript.Entry>, options?: { readonly sync?: boolean }) {
    const checked: Array<Transcript.Entry> = []
    let view: Array<Transcript.Entry> = state.entries
    for (const entry of entries) {
      const withParent = entry.parentId === null && view.length > 0 ? { ...entry, parentId: view.at(-1)?.id ?? null } : entry
      const problem = Transcript.checkAppend(view, withParent)
      if (problem !== undefined) return yield* problem
      checked.push(withParent)
      view = [...view, withParent]
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
      })
      state.headerWritten = true
    }
    yield* store.append(state.entry.agentId, state.entry.sessionId, checked, options)
    state.entries.push(...checked)
  })

const recordTurn = (state: SessionState, result: TurnResult | undefined, aborted: boolean) =>
  Effect.gen(function*() {
    const store = yield* SessionStore
    const now = Date.now()
    const [provider, ...model] = (result?.model ?? "").split("/")
    const last = result?.lastCallUsage
    state.entry = {
      ...state.entry,
      updatedAt: now,
      turnCount: state.entry.turnCount + 1,
      compactionCount: state.entries.filter((e) => e.type === "compaction").length,
      ...(result === undefined ? {} : {
        inputTokens: state.entry.inputTokens + result.usage.input,
        outputTokens: state.entry.outputTokens + result.usage.output,
        cacheRead: state.entry.cacheRead + result.usage.cacheRead,
        cacheWrite: state.entry.cacheWrite + result.usage.cacheWrite,
        totalTokens: state.entry.totalTokens + result.usage.totalTokens,
        contextTokens: last === undefined ? state.entry.contextTokens : last.input + last.cacheRead + last.cacheWrite + last.output,
        ...(model.length > 0 ? { model: model.join("/"), modelProvider: provider ?? "" } : {})
      }),
      abortedLastRun: aborted
    }
    yield* store.putEntry(state.key.key, state.entry)
  })

/**
 * Handles one envelope. Typed failures end the caller's stream and the actor
 * carries on; a defect is reported to the caller and then re-raised so the
 * host restarts the session from what is on disk.
 */
export const handle = Effect.fn("SessionActor.handle")(function*(state: SessionState, envelope: Envelope) {
  const store = yield* SessionStore
  const agents = yield* AgentDirectory
  switch (envelope._tag) {
    case "History":
      return yield* Deferred.succeed(envelope.reply, [...state.entries])
    case "Reset":
      return yield* Deferred.complete(envelope.reply, startNewSession(state, "reset"))
    case "Turn": {
      if (yield* Deferred.isDone(envelope.cancel)) {
        return yield* Queue.fail(envelope.events, new TurnAborted({ sessionKey: state.key.key, message: "the turn was cancelled before it started" }))
      }
      const policy = yield* agents.sessionPolicy
      const trigger = matchResetTrigger(envelope.input.text, policy.resetTriggers)
      if (trigger !== undefined) yield* startNewSession(state, "reset")
      else if (isStale(state.entry, policy.reset, new Date())) yield* startNewSession(state, "stale")
      const input = trigger === undefined ? envelope.input : { ...envelope.input, text: trigger.rest === "" ? NEW_SESSION_GREETING : trigger.rest }
      const turn = Effect.gen(function*() {
        const settings = yield* agents.settings(state.key.agentId)
        yield* Queue.offer(envelope.events, { _tag: "TurnStarted", runId: envelope.input.runId, sessionKey: state.key.key, sessionId: state.entry.sessionId })
        return yield* runTurn(
          {
            key: state.key.key,
            agentId: state.key.agentId,
            sessionId: state.entry.sessionId,
            kind: state.key.kind,
            entries: Effect.sync(() => state.entries),
            persist: persistFor(store, state, settings.workspace)
          },
          settings,
          input,
          (event) => Queue.offer(envelope.events, event).pipe(Effect.asVoid)
        )
      })
      const cancelled = Deferred.await(envelope.cancel).pipe(
        Effect.andThen(Effect.fail(new TurnAborted({ sessionKey: state.key.key, message: "the turn was aborted" })))
      )
      const exit = yield* Effect.exit(Effect.raceFirst(turn, cancelled))
      if (Exit.isSuccess(exit)) {
        yield* recordTurn(state, exit.value, false)
        yield* store.flush.pipe(Effect.ignore)
        return yield* Queue.end(envelope.events)
      }
      const aborted = Cause.hasFails(exit.cause) && Cause.squash(exit.cause) instanceof TurnAborted
      yield* recordTurn(state, undefined, aborted).pipe(Effect.ignore)
      const defect = Cause.findDefect(exit.cause)
      if (defect._tag === "Success") {
        yield* Queue.fail(envelope.events, new SessionCrashed({ sessionKey: state.key.key, message: `the session crashed during the turn and is restarting from its transcript: ${String(defect.success)}` }))
        return yield* Effect.failCause(exit.cause)
      }
      const error = Cause.findError(exit.cause)
      if (error._tag === "Success") return yield* Queue.fail(envelope.events, error.success)
      return yield* Queue.fail(envelope.events, new TurnAborted({ sessionKey: state.key.key, message: "the turn was interrupted" }))
    }
  }
})
