/**
 * The local session host: one actor fiber per live session key, each with a
 * Queue mailbox, under this layer's scope. It supervises (restart from the
 * transcript with backoff, bounded intensity), passivates idle actors and
 * revives them on the next message. Only hosting lives here; the behaviour
 * is SessionActor, so a cluster host can replace this module.
 */
import { Cause, Context, Deferred, Effect, FiberSet, Layer, Option, Queue, Result, Semaphore, Stream } from "effect"
import { AgentDirectory } from "../agent/AgentDirectory.ts"
import type { Models } from "../provider/Models.ts"
import type { SystemPromptSource, TurnInput } from "../agent/RunLoop.ts"
import type { ToolRegistry } from "../agent/Tool.ts"
import { SessionCrashed, SessionUnavailable, type TurnEvent } from "../agent/TurnEvent.ts"
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
  readonly mailbox: Queue.Queue<SessionActor.Envelope>
  current: SessionActor.Envelope | undefined
}

export class Sessions extends Context.Service<Sessions, {
  /** Queues a turn and streams its events; interrupting the stream cancels the turn. */
  readonly send: (key: string, input: TurnInput) => Stream.Stream<TurnEvent, SessionActor.TurnFailure | SessionKey.InvalidSessionKey | SessionUnavailable>
  /** Aborts the running turn of a session; false when none was running. */
  readonly abort: (key: string) => Effect.Effect<boolean, SessionKey.InvalidSessionKey>
  readonly reset: (key: string) => Effect.Effect<SessionEntry, StoreError | SessionKey.InvalidSessionKey | SessionUnavailable>
  readonly history: (key: string) => Effect.Effect<ReadonlyArray<Transcript.Entry>, SessionKey.InvalidSessionKey | SessionUnavailable>
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

    const failPending = (handle: ActorHandle, message: string) =>
      Effect.gen(function*() {
        const pending = yield* Queue.clear(handle.mailbox)
        for (const envelope of pending) {
          if (envelope._tag === "Turn") yield* Queue.fail(envelope.events, new SessionCrashed({ sessionKey: handle.key.key, message }))
          else if (envelope._tag === "History") yield* Deferred.succeed(envelope.reply, [])
          else yield* Deferred.die(envelope.reply, new Error(message))
        }
      })

    /** One incarnation: load from disk, then serve the mailbox until idle. */
    const incarnation = (handle: ActorHandle) =>
      Effect.gen(function*() {
        const state = yield* SessionActor.load(handle.key)
        const policy = yield* agents.sessionPolicy
        while (true) {
          const next = yield* Queue.take(handle.mailbox).pipe(Effect.timeoutOption(policy.passivateAfterMs))
          if (Option.isNone(next)) {
            const passivated = yield* registry.withPermits(1)(Effect.gen(function*() {
              if ((yield* Queue.size(handle.mailbox)) > 0) return false
              actors.delete(handle.key.key)
              counters.passivations++
              return true
            }))
            if (passivated) return
            continue
          }
          handle.current = next.value
          yield* SessionActor.handle(state, next.value).pipe(Effect.ensuring(Effect.sync(() => { handle.current = undefined })))
        }
      })

    /** The supervisor: restarts an incarnation that died, within the configured intensity. */
    const supervise = (handle: ActorHandle) =>
      Effect.gen(function*() {
        const crashes: Array<number> = []
        while (true) {
          const exit = yield* Effect.exit(incarnation(handle))
          if (exit._tag === "Success") return
          if (Cause.hasInterruptsOnly(exit.cause)) return
          const policy = yield* agents.sessionPolicy
          const now = Date.now()
          crashes.push(now)
          while (crashes.length > 0 && (crashes[0] ?? now) < now - policy.supervisor.withinMs) crashes.shift()
          if (crashes.length > policy.supervisor.maxRestarts) {
            counters.gaveUp++
            yield* Effect.logError(`session ${handle.key.key} crashed ${crashes.length} times within ${policy.supervisor.withinMs} ms; stopping it until its next message`, exit.cause)
            yield* registry.withPermits(1)(Effect.sync(() => actors.delete(handle.key.key)))
            yield* failPending(handle, "the session kept crashing and was stopped; send again to restart it")
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
        const handle: ActorHandle = { key, mailbox: yield* Queue.unbounded<SessionActor.Envelope>(), current: undefined }
        actors.set(key.key, handle)
        yield* FiberSet.run(fibers, supervise(handle))
        return handle
      })

    /** Delivery happens under the registry lock, so an actor never passivates with mail waiting. */
    const deliver = (key: SessionKey.ParsedSessionKey, envelope: SessionActor.Envelope) =>
      registry.withPermits(1)(Effect.gen(function*() {
        const handle = yield* actorFor(key)
        const accepted = yield* Queue.offer(handle.mailbox, envelope)
        if (!accepted) return yield* new SessionUnavailable({ sessionKey: key.key, message: "the session is shutting down" })
      }))

    const send = (key: string, input: TurnInput) =>
      Stream.unwrap(Effect.gen(function*() {
        const parsed = yield* parseKey(key)
        const events = yield* Queue.unbounded<TurnEvent, SessionActor.TurnFailure | Cause.Done>()
        const cancel = yield* Deferred.make<void>()
        yield* deliver(parsed, { _tag: "Turn", input, events, cancel })
        // A caller that stops listening cancels its turn, queued or running;
        // once the turn has ended the cancel has nothing left to stop.
        return Stream.fromQueue(events).pipe(Stream.ensuring(Deferred.succeed(cancel, undefined)))
      }))

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
      reset: (key) => ask<SessionEntry, StoreError>(key, (reply) => ({ _tag: "Reset", reply })),
      history: (key) => ask<ReadonlyArray<Transcript.Entry>, never>(key, (reply) => ({ _tag: "History", reply })),
      list: (agentId) =>
        store.listEntries(agentId).pipe(Effect.map((rows) => rows.map(([key, entry]) => ({ key, entry, live: actors.has(key) })))),
      stats: Effect.sync(() => ({ live: actors.size, ...counters }))
    })
  }))
}
