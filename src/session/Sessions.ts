/**
 * The local session host: one actor per live session key, a mailbox and the
 * session's memory, served by a fiber under this layer's scope while it has
 * mail. It supervises (restart from the transcript with backoff, bounded
 * intensity), passivates idle actors and revives them on the next message.
 * Only hosting lives here; the behaviour is SessionActor, so a cluster host
 * can replace this module.
 */
import { Cause, Clock, Context, Deferred, type Duration, Effect, FiberSet, Layer, Queue, Result, Schedule, Stream } from "effect"
import { AgentDirectory, type UnknownAgent } from "../agent/AgentDirectory.ts"
import type { Models } from "../provider/Models.ts"
import type { SystemPromptSource, TurnInput } from "../agent/RunLoop.ts"
import type { ToolRegistry } from "../agent/Tool.ts"
import { SessionUnavailable, type TurnEvent } from "../agent/TurnEvent.ts"
import * as RunLane from "./RunLane.ts"
import * as SessionActor from "./SessionActor.ts"
import * as SessionKey from "./SessionKey.ts"
import { type SessionEntry, SessionStore, type StoreError } from "./SessionStore.ts"
import type * as Transcript from "./Transcript.ts"

export interface SessionRow {
  readonly key: string
  readonly entry: SessionEntry
  readonly live: boolean
}

export interface HostStats {
  /** Sessions held in memory (not passivated). */
  readonly live: number
  /** Live sessions with a fiber serving their mailbox right now; the others hold no fiber. */
  readonly serving: number
  readonly restarts: number
  readonly passivations: number
  readonly gaveUp: number
}

/**
 * A live session: its mailbox and its memory. A fiber serves it only while it
 * has mail, so an idle live session is this object and its state, not a
 * parked fiber (a parked fiber with its generators and context costs several
 * KiB; with 10,000 live sessions that was most of the retained heap).
 */
interface ActorHandle {
  readonly key: SessionKey.ParsedSessionKey
  /** Envelopes not yet taken, oldest first. Replaced by a fresh array when drained, so an idle actor keeps no grown backing store. */
  mailbox: Array<SessionActor.Envelope>
  current: SessionActor.Envelope | undefined
  /** When the actor last finished an envelope (or was sent one); the sweeper passivates on it. */
  lastActive: number
  /** The session's memory, loaded by the first envelope; undefined again after a crash, so the next one reloads it. */
  state: SessionActor.SessionState | undefined
  /** A fiber is serving the mailbox. Set and cleared in the same synchronous steps that push and take mail. */
  serving: boolean
  /** Recent crash times, for the restart intensity; undefined until the first crash. */
  crashes: Array<number> | undefined
  /** The last envelope served was a one-shot turn (TurnInput.oneShot): passivate when the mailbox runs dry. */
  oneShot: boolean
}

/** How long shutdown waits for running turns before interrupting them. */
export const SHUTDOWN_GRACE_MS = 10_000

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? squashed.message : String(squashed)
}

export class Sessions extends Context.Service<Sessions, {
  /** Queues a turn and streams its events; interrupting the stream cancels the turn. */
  readonly send: (key: string, input: TurnInput) => Stream.Stream<TurnEvent, SessionActor.TurnFailure | SessionKey.InvalidSessionKey | SessionUnavailable>
  /** Aborts the running turn of a session; false when none was running. */
  readonly abort: (key: string) => Effect.Effect<boolean, SessionKey.InvalidSessionKey>
  readonly reset: (key: string) => Effect.Effect<SessionEntry, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable>
  readonly history: (key: string) => Effect.Effect<ReadonlyArray<Transcript.Entry>, SessionKey.InvalidSessionKey | SessionUnavailable>
  /**
   * Changes a session's own settings (label, thinking level, model override);
   * with `expectedSessionId`, only while the session is still that one.
   */
  readonly patch: (
    key: string,
    patch: SessionActor.SessionPatch,
    options?: { readonly expectedSessionId?: string | undefined }
  ) => Effect.Effect<SessionEntry, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable | SessionActor.SessionChanged>
  /** Appends an assistant note to the transcript without running the agent (OpenClaw's chat.inject). */
  readonly inject: (key: string, text: string, label?: string) => Effect.Effect<{ readonly messageId: string }, StoreError | Transcript.TranscriptInvariantError | SessionKey.InvalidSessionKey | SessionUnavailable | UnknownAgent>
  /**
   * Aborts any running turn, archives the transcript (`.deleted.<ts>`) and
   * forgets the session; with `expectedSessionId`, only while the session is
   * still that one (a reset queued ahead of the delete is seen).
   */
  readonly delete: (
    key: string,
    options?: { readonly expectedSessionId?: string | undefined }
  ) => Effect.Effect<{ readonly deleted: boolean }, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable | SessionActor.SessionChanged>
  /**
   * Summarises the history before the recent tail into a compaction entry now
   * (OpenClaw's `/compact [instructions]`), in turn with the session's other mail.
   */
  readonly compact: (key: string, instructions?: string) => Effect.Effect<SessionActor.CompactOutcome, SessionActor.CompactFailure | SessionKey.InvalidSessionKey>
  /**
   * Forgets a session that is not live (session maintenance): if its index
   * entry is still `expected`, its transcript is archived (`.deleted.<ts>`)
   * or erased and the entry removed; mail for it meanwhile waits, then finds
   * a fresh session. False, with nothing done, when the session is live or
   * has changed since `expected` was read.
   */
  readonly retireIdle: (key: string, expected: SessionEntry, transcript: "archive" | "erase") => Effect.Effect<boolean, StoreError>
  readonly list: (agentId?: string) => Effect.Effect<ReadonlyArray<SessionRow>, StoreError>
  /** One session's index entry (canonical store key), without listing the others. */
  readonly entry: (key: string) => Effect.Effect<SessionEntry | undefined, StoreError>
  readonly stats: Effect.Effect<HostStats>
  /** The global lane of agent runs: turns holding a slot now, and its size. */
  readonly lane: Effect.Effect<{ readonly running: number; readonly capacity: number }>
  /** Waits for the next turn to end, then until no turn has run for `after` (RunLane.quiet). */
  readonly quiet: (after: Duration.Duration) => Effect.Effect<void>
}>()("beamclaw/session/Sessions") {
  static readonly layer = Layer.effect(Sessions, Effect.gen(function*() {
    const store = yield* SessionStore
    const agents = yield* AgentDirectory
    // Closed after the fibers are interrupted (finalizers run in reverse): mail still waiting then is answered.
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        for (const handle of actors.values()) yield* failPending(handle, "the gateway is shutting down")
      })
    )
    const fibers = yield* FiberSet.make()
    // Actor fibers run with this layer's context, not with that of whoever sent the mail that started them.
    const runActor = yield* FiberSet.runtime(fibers)<SessionStore | AgentDirectory | Models | ToolRegistry | SystemPromptSource>()
    const actors = new Map<string, ActorHandle>()
    /** Sessions being retired by maintenance: mail for one waits for its gate, so no actor loads it half-removed. */
    const retiring = new Map<string, Deferred.Deferred<void>>()
    const counters = { restarts: 0, passivations: 0, gaveUp: 0 }

    const parseKey = (key: string) => Effect.gen(function*() {
      const policy = yield* agents.sessionPolicy
      const parsed = SessionKey.parse(key, { mainKey: policy.mainKey })
      return Result.isSuccess(parsed) ? parsed.success : yield* parsed.failure
    })

    /** Answers everything still waiting in a mailbox that will not be served. */
    const failPending = (handle: ActorHandle, message: string) =>
      Effect.forEach(handle.mailbox.splice(0), (envelope) => failEnvelope(handle, envelope, message), { discard: true })
    const failEnvelope = (handle: ActorHandle, envelope: SessionActor.Envelope, message: string) => {
      const error = new SessionUnavailable({ sessionKey: handle.key.key, message })
      switch (envelope._tag) {
        case "Turn":
          return Queue.fail(envelope.events, error).pipe(Effect.asVoid)
        case "History":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
        case "Reset":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
        case "Patch":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
        case "Inject":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
        case "Delete":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
        case "Compact":
          return Deferred.fail(envelope.reply, error).pipe(Effect.asVoid)
      }
    }

    /**
     * Takes the actor out of the registry and answers its waiting mail, in one
     * synchronous step with the end of its fiber's service: no delivery can
     * slip in between, and the next message starts a fresh actor.
     */
    const retire = (handle: ActorHandle, message: string) =>
      Effect.suspend(() => {
        if (actors.get(handle.key.key) === handle) actors.delete(handle.key.key)
        handle.serving = false
        return failPending(handle, message)
      })

    /**
     * Serves the mailbox until it is empty, then ends; the next delivery
     * starts another. This fiber is also the supervisor: a defect drops the
     * session's memory and, after a backoff, the next envelope reloads it from
     * the transcript, within the configured restart intensity.
     */
    const lane = yield* RunLane.make()
    // The lane is sized here only, before the first turn and then at each config change, in order: a larger
    // maxConcurrent lets waiting turns start without another turn asking, and no turn can restore an older size.
    yield* lane.resize((yield* agents.sessionPolicy).maxConcurrent)
    yield* agents.sessionPolicyChanges.pipe(
      Stream.runForEach((policy) => lane.resize(policy.maxConcurrent)),
      Effect.forkScoped
    )
    const serve = (handle: ActorHandle): Effect.Effect<void, never, SessionStore | AgentDirectory | Models | ToolRegistry | SystemPromptSource> =>
      Effect.gen(function*() {
        while (true) {
          let state = handle.state
          if (state === undefined) {
            const loaded = yield* Effect.exit(SessionActor.load(handle.key))
            if (loaded._tag === "Failure") {
              const error = Cause.findError(loaded.cause)
              if (error._tag === "Success") {
                // The session could not be loaded (an unreadable transcript, say).
                // Retrying will not help; callers get the reason, and the next message tries afresh.
                yield* Effect.logError(`session ${handle.key.key} could not be loaded: ${error.success.message}`)
                // A reset or delete needs no history: done from the index, so the key is never stuck behind its file.
                const rescued = handle.mailbox.filter((envelope) => envelope._tag === "Reset" || envelope._tag === "Delete")
                handle.mailbox = handle.mailbox.filter((envelope) => envelope._tag !== "Reset" && envelope._tag !== "Delete")
                for (const envelope of rescued) {
                  if (envelope._tag === "Reset" || envelope._tag === "Delete") yield* SessionActor.withoutLoading(handle.key, envelope)
                }
                // After a reset or delete the session loads afresh: mail that came meanwhile is served, not refused.
                if (rescued.length > 0) continue
                return yield* retire(handle, `the session could not be loaded: ${error.success.message}`)
              }
              if (Cause.hasInterruptsOnly(loaded.cause)) {
                yield* Effect.yieldNow
                continue
              }
              if (yield* crashed(handle, loaded.cause)) return
              continue
            }
            state = loaded.value
            handle.state = state
          }
          const next = handle.mailbox.shift()
          if (next === undefined) {
            // Idle: no fiber until the next delivery.
            handle.mailbox = []
            handle.serving = false
            // A session made for one turn is passivated now, in the same step, so no delivery can land in between.
            if (handle.oneShot && actors.get(handle.key.key) === handle) {
              actors.delete(handle.key.key)
              counters.passivations++
            }
            return
          }
          handle.oneShot = next._tag === "Turn" && next.input.oneShot === true
          handle.current = next
          const exit = yield* SessionActor.handle(state, next, lane).pipe(
            // Whatever happened, nobody is left waiting on this envelope.
            Effect.onExit((exit) => exit._tag === "Success" ? Effect.void : failEnvelope(handle, next, `the session failed: ${describeCause(exit.cause)}`)),
            Effect.exit
          )
          handle.current = undefined
          handle.lastActive = yield* Clock.currentTimeMillis
          if (exit._tag === "Success") continue
          if (Cause.hasInterruptsOnly(exit.cause)) {
            // An interrupted fiber stops at its next step (shutdown); anything else carries on serving.
            yield* Effect.yieldNow
            continue
          }
          const error = Cause.findError(exit.cause)
          if (error._tag === "Success" && error.success._tag === "LoadFailed") {
            // Reloading after a failed turn found the transcript unreadable.
            yield* Effect.logError(`session ${handle.key.key} could not be loaded: ${error.success.message}`)
            return yield* retire(handle, `the session could not be loaded: ${error.success.message}`)
          }
          if (yield* crashed(handle, exit.cause)) return
        }
      }).pipe(
        // An interrupted service (shutdown) leaves the handle free for nobody; a normal end already cleared the flag.
        Effect.onExit((exit) => exit._tag === "Failure" ? Effect.sync(() => { handle.serving = false }) : Effect.void)
      )

    /** After a defect: true when the supervisor gave up (the actor is retired); otherwise the backoff has been waited and memory dropped. */
    const crashed = (handle: ActorHandle, cause: Cause.Cause<unknown>) =>
      Effect.gen(function*() {
        handle.state = undefined
        const policy = yield* agents.sessionPolicy
        const now = yield* Clock.currentTimeMillis
        const crashes = handle.crashes ?? []
        handle.crashes = crashes
        crashes.push(now)
        while (crashes.length > 0 && (crashes[0] ?? now) < now - policy.supervisor.withinMs) crashes.shift()
        if (crashes.length > policy.supervisor.maxRestarts) {
          counters.gaveUp++
          yield* Effect.logError(`session ${handle.key.key} crashed ${crashes.length} times within ${policy.supervisor.withinMs} ms; stopping it until its next message`, cause)
          yield* retire(handle, `the session kept crashing (last: ${describeCause(cause)}) and was stopped; send again to restart it`)
          return true
        }
        counters.restarts++
        const backoff = Math.min(policy.supervisor.backoffMs * 2 ** (crashes.length - 1), 30_000)
        yield* Effect.logWarning(`session ${handle.key.key} crashed; restarting from its transcript in ${backoff} ms`, cause)
        yield* Effect.sleep(backoff)
        return false
      })

    /**
     * Puts the envelope in the session's mailbox (creating the actor if it is
     * not live) and starts a fiber to serve it if none is serving. The lookup,
     * the push and the check are one synchronous step, as are the sweeper's
     * check and removal, so mail never lands in a passivated actor.
     */
    const deliver = (key: SessionKey.ParsedSessionKey, envelope: SessionActor.Envelope) =>
      Effect.gen(function*() {
        let now = yield* Clock.currentTimeMillis
        // Checked again after each wait, with no step between the last check and the lookup below.
        for (let gate = retiring.get(key.key); gate !== undefined; gate = retiring.get(key.key)) {
          yield* Deferred.await(gate)
          now = yield* Clock.currentTimeMillis
        }
        if (closed) return yield* new SessionUnavailable({ sessionKey: key.key, message: "the gateway is shutting down" })
        let handle = actors.get(key.key)
        const created = handle === undefined
        if (handle === undefined) {
          handle = { key, mailbox: [], current: undefined, lastActive: now, state: undefined, serving: false, crashes: undefined, oneShot: false }
          actors.set(key.key, handle)
        }
        // Counts as activity at once, so the sweeper never takes an actor that has mail in hand.
        handle.lastActive = now
        handle.mailbox.push(envelope)
        const start = !handle.serving
        handle.serving = true
        if (start) runActor(serve(handle))
        if (created) yield* Queue.offer(sweepSignal, undefined)
      })

    // One sweeper for all actors, instead of a timer per actor: it sleeps while
    // no actor is live, so an idle gateway has no timers running at all.
    const sweepSignal = yield* Queue.sliding<void>(1)
    const sweep = Effect.gen(function*() {
      const policy = yield* agents.sessionPolicy
      const now = yield* Clock.currentTimeMillis
      for (const [key, handle] of actors) {
        if (handle.serving || handle.mailbox.length > 0 || now - handle.lastActive < policy.passivateAfterMs) continue
        actors.delete(key)
        counters.passivations++
      }
      return Math.max(250, Math.min(policy.passivateAfterMs / 4, 60_000))
    })
    yield* Effect.gen(function*() {
      while (true) {
        if (actors.size === 0) yield* Queue.take(sweepSignal)
        const interval = yield* sweep
        if (actors.size > 0) yield* Effect.sleep(interval)
      }
    }).pipe(
      Effect.tapCause((cause) => Effect.logError("session sweeper failed; restarting it", cause)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forkScoped
    )

    // On shutdown (after the listener has stopped taking requests) running
    // turns get a bounded time to finish before the actors are interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const running = () => [...actors.values()].filter((handle) => handle.current?._tag === "Turn").length
        if (running() === 0) return
        yield* Effect.logInfo(`waiting up to ${SHUTDOWN_GRACE_MS / 1000}s for ${running()} running turn(s) to finish`)
        const deadline = (yield* Clock.currentTimeMillis) + SHUTDOWN_GRACE_MS
        while (running() > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("50 millis")
        if (running() > 0) yield* Effect.logWarning(`stopping ${running()} turn(s) that did not finish in time; their transcripts keep what was said`)
      })
    )

    const send = (key: string, input: TurnInput) =>
      Stream.unwrap(Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const parsed = yield* restore(parseKey(key))
          const events = yield* Queue.unbounded<TurnEvent, SessionActor.TurnFailure | Cause.Done>()
          const cancel = yield* Deferred.make<void>()
          yield* restore(deliver(parsed, { _tag: "Turn", input, events, cancel })).pipe(
            Effect.onInterrupt(() => Deferred.succeed(cancel, undefined))
          )
          // A caller that stops listening cancels its turn, queued or running;
          // once the turn has ended the cancel has nothing left to stop.
          return Stream.fromQueue(events).pipe(Stream.ensuring(Deferred.succeed(cancel, undefined)))
        })
      ))

    const ask = <A, E>(key: string, make: (reply: Deferred.Deferred<A, E>) => SessionActor.Envelope) =>
      Effect.gen(function*() {
        const parsed = yield* parseKey(key)
        const reply = yield* Deferred.make<A, E>()
        yield* deliver(parsed, make(reply))
        return yield* Deferred.await(reply)
      })

    return Sessions.of({
      send,
      abort: (key) =>
        Effect.gen(function*() {
          const parsed = yield* parseKey(key)
          const current = actors.get(parsed.key)?.current
          if (current?._tag !== "Turn") return false
          return yield* Deferred.succeed(current.cancel, undefined)
        }),
      reset: (key) => ask<SessionEntry, StoreError | SessionUnavailable>(key, (reply) => ({ _tag: "Reset", reply })),
      history: (key) => ask<ReadonlyArray<Transcript.Entry>, SessionUnavailable>(key, (reply) => ({ _tag: "History", reply })),
      patch: (key, patch, options) =>
        ask<SessionEntry, StoreError | SessionUnavailable | SessionActor.SessionChanged>(key, (reply) => ({ _tag: "Patch", patch, expectedSessionId: options?.expectedSessionId, reply })),
      inject: (key, text, label) => ask<{ readonly messageId: string }, StoreError | Transcript.TranscriptInvariantError | SessionUnavailable | UnknownAgent>(key, (reply) => ({ _tag: "Inject", text, label, reply })),
      delete: (key, options) =>
        Effect.gen(function*() {
          const parsed = yield* parseKey(key)
          const current = actors.get(parsed.key)?.current
          if (current?._tag === "Turn") yield* Deferred.succeed(current.cancel, undefined)
          return yield* ask<{ readonly deleted: boolean }, StoreError | SessionUnavailable | SessionActor.SessionChanged>(key, (reply) => ({
            _tag: "Delete",
            deleteTranscript: true,
            expectedSessionId: options?.expectedSessionId,
            reply
          }))
        }),
      compact: (key, instructions) =>
        ask<SessionActor.CompactOutcome, SessionActor.CompactFailure>(key, (reply) => ({ _tag: "Compact", instructions, reply })),
      retireIdle: (key, expected, transcript) =>
        Effect.uninterruptible(Effect.gen(function*() {
          // The check and the gate are one synchronous step, as deliver's lookup and push.
          const gate = yield* Effect.sync(() => {
            if (closed || actors.has(key) || retiring.has(key)) return undefined
            const made = Deferred.makeUnsafe<void>()
            retiring.set(key, made)
            return made
          })
          if (gate === undefined) return false
          return yield* Effect.gen(function*() {
            const entry = yield* store.getEntry(key)
            if (entry === undefined || entry.sessionId !== expected.sessionId || entry.updatedAt !== expected.updatedAt) return false
            // The key's agent names the directory, as when the session loads (an entry's own agentId is not trusted).
            const agentId = key.split(":")[1] ?? entry.agentId
            // The transcript first: a stop in between leaves an entry whose transcript is archived (dropped at the
            // next load, see FileSessionStore's reconcile) or gone (an old entry, pruned again), never the reverse.
            if (transcript === "archive") yield* store.archiveTranscript(agentId, entry.sessionId, "deleted")
            else yield* store.removeTranscript(agentId, entry.sessionId)
            yield* store.deleteEntry(key)
            return true
          }).pipe(Effect.ensuring(Effect.suspend(() => {
            retiring.delete(key)
            return Deferred.succeed(gate, undefined)
          })))
        })),
      list: (agentId) =>
        store.listEntries(agentId).pipe(Effect.map((rows) => rows.map(([key, entry]) => ({ key, entry, live: actors.has(key) })))),
      entry: (key) => store.getEntry(key),
      stats: Effect.sync(() => {
        let serving = 0
        for (const handle of actors.values()) if (handle.serving) serving++
        return { live: actors.size, serving, ...counters }
      }),
      lane: lane.stats,
      quiet: lane.quiet
    })
  }))
}
