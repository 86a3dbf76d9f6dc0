/**
 * Per-session event fan-out. `Sessions.send` streams a turn's events to its
 * caller only; surfaces that want others to watch a session (RPC `Subscribe`,
 * later the WebSocket protocol's chat events) send through here, or wrap
 * their turn stream with `publishing`, and every subscriber of that session
 * key sees the events too.
 *
 * A session nobody watches costs one Map lookup per event: its PubSub exists
 * only while it has subscribers.
 */
import { Cause, Context, Effect, Exit, Layer, PubSub, Stream } from "effect"
import type { TurnInput } from "../../agent/RunLoop.ts"
import type { SessionUnavailable, TurnEvent } from "../../agent/TurnEvent.ts"
import type { TurnFailure } from "../../session/SessionActor.ts"
import type { InvalidSessionKey } from "../../session/SessionKey.ts"
import { Sessions } from "../../session/Sessions.ts"
import type { SessionEvent } from "./Rpcs.ts"

type SendError = TurnFailure | InvalidSessionKey | SessionUnavailable

export interface SessionEventsShape {
  /** `Sessions.send`, with the turn's events published to the session's subscribers. */
  readonly send: (sessionKey: string, input: TurnInput) => Stream.Stream<TurnEvent, SendError>
  /**
   * Publishes a turn's events as they pass through, and how it ended: a
   * failure, or the caller going away before `TurnCompleted`, is a `TurnFailed`.
   * For surfaces that call `Sessions.send` themselves.
   */
  readonly publishing: <E extends { readonly _tag: string; readonly message: string }, R>(
    sessionKey: string,
    runId: string,
    events: Stream.Stream<TurnEvent, E, R>
  ) => Stream.Stream<TurnEvent, E, R>
  /** The session's events from now on, starting with `Subscribed` once nothing can be missed. */
  readonly subscribe: (sessionKey: string) => Stream.Stream<SessionEvent>
  /** How many subscribers a session has (for tests and status). */
  readonly subscribers: (sessionKey: string) => Effect.Effect<number>
}

interface Channel {
  readonly pubsub: PubSub.PubSub<SessionEvent>
  subscribers: number
}

/** Session keys are case-insensitive; the store keeps them lower-cased. */
const normalise = (sessionKey: string) => sessionKey.toLowerCase()

export class SessionEvents extends Context.Service<SessionEvents, SessionEventsShape>()("beamclaw/gateway/rpc/SessionEvents") {
  static readonly layer = Layer.effect(SessionEvents, Effect.gen(function*() {
    const sessions = yield* Sessions
    const channels = new Map<string, Channel>()

    const publish = (sessionKey: string, event: SessionEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const channel = channels.get(sessionKey)
        return channel === undefined ? Effect.void : PubSub.publish(channel.pubsub, event).pipe(Effect.asVoid)
      })

    const publishing = <E extends { readonly _tag: string; readonly message: string }, R>(
      rawKey: string,
      runId: string,
      events: Stream.Stream<TurnEvent, E, R>
    ): Stream.Stream<TurnEvent, E, R> => {
      const sessionKey = normalise(rawKey)
      let completed = false
      return events.pipe(
        Stream.tap((event) => {
          if (event._tag === "TurnCompleted") completed = true
          return publish(sessionKey, { _tag: "Turn", sessionKey, runId, event })
        }),
        Stream.onExit((exit) => {
          if (completed) return Effect.void
          if (Exit.isSuccess(exit)) return Effect.void
          const error = Cause.findError(exit.cause)
          return error._tag === "Success"
            ? publish(sessionKey, { _tag: "TurnFailed", sessionKey, runId, error: error.success._tag, message: error.success.message })
            : publish(sessionKey, {
              _tag: "TurnFailed",
              sessionKey,
              runId,
              error: Cause.hasInterruptsOnly(exit.cause) ? "Interrupted" : "Defect",
              message: Cause.hasInterruptsOnly(exit.cause) ? "the caller went away; the turn was cancelled" : "the turn failed unexpectedly"
            })
        })
      )
    }

    const subscribe = (rawKey: string): Stream.Stream<SessionEvent> =>
      Stream.unwrap(Effect.gen(function*() {
        const sessionKey = normalise(rawKey)
        const channel = yield* Effect.acquireRelease(
          Effect.gen(function*() {
            const existing = channels.get(sessionKey)
            if (existing !== undefined) {
              existing.subscribers++
              return existing
            }
            const created: Channel = { pubsub: yield* PubSub.unbounded<SessionEvent>(), subscribers: 1 }
            channels.set(sessionKey, created)
            return created
          }),
          (channel) =>
            Effect.suspend(() => {
              channel.subscribers--
              if (channel.subscribers > 0) return Effect.void
              if (channels.get(sessionKey) === channel) channels.delete(sessionKey)
              return PubSub.shutdown(channel.pubsub)
            })
        )
        const subscription = yield* PubSub.subscribe(channel.pubsub)
        return Stream.concat(
          Stream.succeed<SessionEvent>({ _tag: "Subscribed", sessionKey }),
          Stream.fromSubscription(subscription)
        )
      }))

    return SessionEvents.of({
      send: (sessionKey, input) => publishing(sessionKey, input.runId, sessions.send(sessionKey, input)),
      publishing,
      subscribe,
      subscribers: (sessionKey) => Effect.sync(() => channels.get(normalise(sessionKey))?.subscribers ?? 0)
    })
  }))
}
