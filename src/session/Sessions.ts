/**
 * The local session host: one actor fiber per live session key, each with a
 * Queue mailbox, under this layer's scope. It supervises (restart from the
 * transcript with backoff, bounded intensity), passivates idle actors and
 * revives them on the next message. Only hosting lives here; the behaviour
 * is SessionActor, so a cluster host can replace this module.
 */
import { Cause, Clock, Context, Deferred, Effect, FiberSet, Layer, Queue, Result, Schedule, Semaphore, Stream } from "effect"
import { AgentDirectory, type UnknownAgent } from "../agent/AgentDirectory.ts"
import type { Models } from "../provider/Models.ts"
import type { SystemPromptSource, TurnInput } from "../agent/RunLoop.ts"
import type { ToolRegistry } from "../agent/Tool.ts"
import { SessionUnavailable, type TurnEvent } from "../agent/TurnEvent.ts"
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
  readonly live: number
  readonly restarts: number
  readonly passivations: number
  readonly gaveUp: number
}

interface ActorHandle {
  readonly key: SessionKey.ParsedSessionKey
  readonly mailbox: Queue.Queue<SessionActor.Envelope, Cause.Done>
  current: SessionActor.Envelope | undefined
  /** When the actor last finished an envelope; the sweeper passivates on it. */
  lastActive: number
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
  /** Changes a session's own settings (label, thinking level, model override). */
  readonly patch: (key: string, patch: SessionActor.SessionPatch) => Effect.Effect<SessionEntry, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable>
  /** Appends an assistant note to the transcript without running the agent (OpenClaw's chat.inject). */
  readonly inject: (key: string, text: string, label?: string) => Effect.Effect<{ readonly messageId: string }, StoreError | Transcript.TranscriptInvariantError | SessionKey.InvalidSessionKey | SessionUnavailable | UnknownAgent>
  /** Aborts any running turn, archives the transcript (`.deleted.<ts>`) and forgets the session. */
  readonly delete: (key: string) => Effect.Effect<{ readonly deleted: boolean }, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable>
  readonly list: (agentId?: string) => Effect.Effect<ReadonlyArray<SessionRow>, StoreError>
  readonly stats: Effect.Effect<HostStats>
}>()("beamclaw/session/Sessions") {
  static readonly layer = Layer.effect(Sessions, Effect.gen(function*() {
    const store = yield* SessionStore
    const agents = yield* AgentDirectory
    const context = yield* Effect.context<SessionStore | AgentDirectory | Models | ToolRegistry | SystemPromptSource>()
    const fibers = yield* FiberSet.make()
    const actors = new Map<string, ActorHandle>()
    const registry = yield* Semaphore.make(1)
    const counters = { restarts: 0, passivations: 0, gaveUp: 0 }

    const parseKey = (key: string) => Effect.gen(function*() {
      const policy = yield* agents.sessionPolicy
      const parsed = SessionKey.parse(key, { mainKey: policy.mainKey })
      return Result.isSuccess(parsed) ? parsed.success : yield* parsed.failure
    })

    /** Answers everything still waiting in a mailbox that will not be served. */
    const failPending = (handle: ActorHandle, message: string) =>
      Effect.gen(function*() {
        const pending = yield* Queue.clear(handle.mailbox)
        for (const envelope of pending) yield* failEnvelope(handle, envelope, message)
      })
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
      }
    }

    /** One incarnation: load from disk, then serve the mailbox until it is ended (passivation). */
    const incarnation = (handle: ActorHandle) =>
      Effect.gen(function*() {
        const state = yield* SessionActor.load(handle.key).pipe(
          Effect.mapError((error) => new SessionActor.LoadFailed({ sessionKey: handle.key.key, message: error.message }))
        )
        while (true) {
          const next = yield* Queue.take(handle.mailbox).pipe(Effect.catchTag("Done", () => Effect.succeed(undefined)))
          if (next === undefined) return
          handle.current = next
          yield* SessionActor.handle(state, next).pipe(
            // Whatever happened, nobody is left waiting on this envelope.
            Effect.onExit((exit) => exit._tag === "Success" ? Effect.void : failEnvelope(handle, next, `the session failed: ${describeCause(exit.cause)}`)),
            Effect.ensuring(Effect.gen(function*() {
              handle.current = undefined
              handle.lastActive = yield* Clock.currentTimeMillis
            }))
          )
        }
      })

    const retire = (handle: ActorHandle) => registry.withPermits(1)(Effect.sync(() => {
      if (actors.get(handle.key.key) === handle) actors.delete(handle.key.key)
    }))

    /** The supervisor: restarts an incarnation that died, within the configured intensity. */
    const supervise = (handle: ActorHandle) =>
      Effect.gen(function*() {
        const crashes: Array<number> = []
        while (true) {
          const exit = yield* Effect.exit(incarnation(handle))
          if (exit._tag === "Success" || Cause.hasInterruptsOnly(exit.cause)) return
          const error = Cause.findError(exit.cause)
          if (error._tag === "Success" && error.success._tag === "LoadFailed") {
            // The session could not be loaded (an unreadable transcript, say).
            // Retrying will not help; callers get the reason, and the next message tries afresh.
            yield* Effect.logError(`session ${handle.key.key} could not be loaded: ${error.success.message}`)
            yield* retire(handle)
            yield* failPending(handle, `the session could not be loaded: ${error.success.message}`)
            return
          }
          const policy = yield* agents.sessionPolicy
          const now = yield* Clock.currentTimeMillis
          crashes.push(now)
          while (crashes.length > 0 && (crashes[0] ?? now) < now - policy.supervisor.withinMs) crashes.shift()
          if (crashes.length > policy.supervisor.maxRestarts) {
            counters.gaveUp++
            yield* Effect.logError(`session ${handle.key.key} crashed ${crashes.length} times within ${policy.supervisor.withinMs} ms; stopping it until its next message`, exit.cause)
            yield* retire(handle)
            yield* failPending(handle, `the session kept crashing (last: ${describeCause(exit.cause)}) and was stopped; send again to restart it`)
            return
          }
          counters.restarts++
          const backoff = Math.min(policy.supervisor.backoffMs * 2 ** (crashes.length - 1), 30_000)
          yield* Effect.logWarning(`session ${handle.key.key} crashed; restarting from its transcript in ${backoff} ms`, exit.cause)
          yield* Effect.sleep(backoff)
        }
      }).pipe(Effect.provideContext(context))

    const actorFor = (key: SessionKey.ParsedSessionKey) =>
      Effect.gen(function*() {
        const existing = actors.get(key.key)
        if (existing !== undefined) return existing
        const handle: ActorHandle = {
          key,
          mailbox: yield* Queue.unbounded<SessionActor.Envelope, Cause.Done>(),
          current: undefined,
          lastActive: yield* Clock.currentTimeMillis
        }
        actors.set(key.key, handle)
        yield* FiberSet.run(fibers, supervise(handle))
        yield* Queue.offer(sweepSignal, undefined)
        return handle
      })

    /** Delivery happens under the registry lock, so an actor never passivates with mail waiting. */
    const deliver = (key: SessionKey.ParsedSessionKey, envelope: SessionActor.Envelope) =>
      registry.withPermits(1)(Effect.gen(function*() {
        const handle = yield* actorFor(key)
        // Counts as activity at once, so the sweeper never takes an actor that has mail in hand.
        handle.lastActive = yield* Clock.currentTimeMillis
        const accepted = yield* Queue.offer(handle.mailbox, envelope)
        if (!accepted) return yield* new SessionUnavailable({ sessionKey: key.key, message: "the session is shutting down" })
      }))

    // One sweeper for all actors, instead of a timer per actor: it sleeps while
    // no actor is live, so an idle gateway has no timers running at all.
    const sweepSignal = yield* Queue.sliding<void>(1)
    const sweep = Effect.gen(function*() {
      const policy = yield* agents.sessionPolicy
      const now = yield* Clock.currentTimeMillis
      yield* registry.withPermits(1)(Effect.gen(function*() {
        for (const handle of [...actors.values()]) {
          if (handle.current !== undefined || now - handle.lastActive < policy.passivateAfterMs) continue
          if ((yield* Queue.size(handle.mailbox)) > 0) continue
          actors.delete(handle.key.key)
          counters.passivations++
          yield* Queue.end(handle.mailbox)
        }
      }))
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
      patch: (key, patch) => ask<SessionEntry, StoreError | SessionUnavailable>(key, (reply) => ({ _tag: "Patch", patch, reply })),
      inject: (key, text, label) => ask<{ readonly messageId: string }, StoreError | Transcript.TranscriptInvariantError | SessionUnavailable | UnknownAgent>(key, (reply) => ({ _tag: "Inject", text, label, reply })),
      delete: (key) =>
        Effect.gen(function*() {
          const parsed = yield* parseKey(key)
          const current = actors.get(parsed.key)?.current
          if (current?._tag === "Turn") yield* Deferred.succeed(current.cancel, undefined)
          return yield* ask<{ readonly deleted: boolean }, StoreError | SessionUnavailable>(key, (reply) => ({ _tag: "Delete", deleteTranscript: true, reply }))
        }),
      list: (agentId) =>
        store.listEntries(agentId).pipe(Effect.map((rows) => rows.map(([key, entry]) => ({ key, entry, live: actors.has(key) })))),
      stats: Effect.sync(() => ({ live: actors.size, ...counters }))
    })
  }))
}
