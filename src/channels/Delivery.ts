/**
 * Sends a reply's pieces in order, each exactly once: a piece already
 * recorded as sent (before a restart) is skipped, every send carries the
 * piece's idempotency key so a platform drops a repeat, transient failures
 * are retried with backoff (the platform's retry-after first), and a piece
 * that cannot be sent is written to the dead-letter log with the reason —
 * never dropped silently.
 *
 * A piece the platform cannot de-duplicate (`atMostOnce`, Discord's
 * interaction follow-ups) is sent at most once instead: each attempt is
 * recorded (durably) before it is made, a failure that may have reached the
 * platform (a lost answer, a timeout, a 5xx) is not retried, and an attempt
 * left without an outcome by a crash or a closed connection is never made
 * again; such a piece is dead-lettered. Only a failure that provably did not
 * reach the platform (`notSent`) clears the attempt and may be retried.
 *
 * An attempt record that cannot be written means the piece is not sent at
 * all (dead-lettered): a restart could not know it was tried. A sent key that
 * cannot be recorded is logged and the piece still counts as sent.
 */
import { Clock, Effect, Random } from "effect"
import { type ChannelConnection, type OutboundMessage, SendError } from "./Channel.ts"
import type { JournalWriteFailed } from "./ChannelJournal.ts"

export interface RetryPolicy {
  /** Attempts per piece, the first included. */
  readonly attempts: number
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  readonly jitter: number
}

/** OpenClaw's outbound retry: 3 attempts, at least 500 ms apart, at most 30 s. */
export const defaultRetryPolicy: RetryPolicy = { attempts: 3, initialDelayMs: 500, maxDelayMs: 30_000, jitter: 0.1 }

export interface DeadLetter {
  readonly at: number
  readonly idempotencyKey: string
  readonly chatId: string
  readonly text: string
  readonly attempts: number
  readonly error: string
}

/** Where delivery remembers what it sent and what it gave up on. */
export interface DeliveryLog {
  /** The platform id of a piece sent before (this process or an earlier one), if any. */
  readonly sent: (idempotencyKey: string) => Effect.Effect<string | undefined>
  /** Durable; fails when the key could not be written. */
  readonly markSent: (idempotencyKey: string, messageId: string) => Effect.Effect<void, JournalWriteFailed>
  readonly deadLetter: (entry: DeadLetter) => Effect.Effect<void>
  /** An at-most-once piece is about to be sent (durable before it returns). */
  readonly attempting: (idempotencyKey: string) => Effect.Effect<void, JournalWriteFailed>
  /** Its attempt provably did not reach the platform: it may be sent again. */
  readonly attemptFailed: (idempotencyKey: string) => Effect.Effect<void>
  /** An attempt was made (this process or an earlier one) and its outcome is unknown. */
  readonly attempted: (idempotencyKey: string) => Effect.Effect<boolean>
}

export interface PieceResult {
  readonly idempotencyKey: string
  readonly messageId?: string | undefined
  /** Set when the piece went to the dead-letter log. */
  readonly error?: string | undefined
  readonly skipped: boolean
}

type Attempted =
  | { readonly _tag: "Sent"; readonly messageId: string; readonly attempts: number }
  | { readonly _tag: "GaveUp"; readonly error: SendError; readonly attempts: number }

const sendWithRetry = (connection: ChannelConnection, log: DeliveryLog, message: OutboundMessage, policy: RetryPolicy): Effect.Effect<Attempted> =>
  Effect.gen(function*() {
    const once = message.atMostOnce === true
    let attempt = 0
    while (true) {
      attempt += 1
      if (once) {
        const recorded = yield* Effect.result(log.attempting(message.idempotencyKey))
        if (recorded._tag === "Failure") {
          // Unrecorded, a crash after the send would leave a restart free to post it again.
          const error = new SendError({ message: `the attempt could not be recorded before sending (${recorded.failure.message}): not sent`, retryable: false, notSent: true })
          return { _tag: "GaveUp", error, attempts: attempt - 1 }
        }
      }
      const result = yield* Effect.result(connection.send(message))
      if (result._tag === "Success") return { _tag: "Sent", messageId: result.success.messageId, attempts: attempt }
      const error = result.failure
      if (once && error.notSent === true) yield* log.attemptFailed(message.idempotencyKey)
      // A repeat of an at-most-once piece is only safe when the platform provably never saw the first try.
      const retryable = error.retryable && (!once || error.notSent === true)
      if (once && error.retryable && !retryable) {
        yield* Effect.logWarning(`send to ${message.target.chatId} failed (${error.message}) and may have reached the platform, which cannot drop a repeat: not retried`)
      }
      if (!retryable || attempt >= policy.attempts) return { _tag: "GaveUp", error, attempts: attempt }
      const backoff = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1))
      const jitter = 1 + (yield* Random.nextBetween(-policy.jitter, policy.jitter))
      const delay = Math.min(policy.maxDelayMs, Math.max(error.retryAfterMs ?? 0, Math.round(backoff * jitter)))
      yield* Effect.logWarning(`send to ${message.target.chatId} failed (${error.message}); retry ${attempt}/${policy.attempts - 1} in ${delay} ms`)
      yield* Effect.sleep(delay)
    }
  })

/**
 * Sends the pieces one after another. A piece that fails for good is
 * dead-lettered and the rest still go out (a reply with a hole beats no reply);
 * the results say which pieces failed so the caller can tell the user.
 */
export const deliver = Effect.fn("Delivery.deliver")(function*(
  connection: ChannelConnection,
  log: DeliveryLog,
  pieces: ReadonlyArray<OutboundMessage>,
  policy: RetryPolicy = defaultRetryPolicy
) {
  const results: Array<PieceResult> = []
  for (const piece of pieces) {
    const earlier = yield* log.sent(piece.idempotencyKey)
    if (earlier !== undefined) {
      results.push({ idempotencyKey: piece.idempotencyKey, messageId: earlier, skipped: true })
      continue
    }
    if (piece.atMostOnce === true && (yield* log.attempted(piece.idempotencyKey))) {
      // An earlier attempt ended without an answer (a crash, a closed connection): it may have been posted.
      const error = "an earlier attempt may have reached the platform (its outcome is unknown) and a repeat cannot be de-duplicated: not sent again"
      const at = yield* Clock.currentTimeMillis
      yield* log.deadLetter({ at, idempotencyKey: piece.idempotencyKey, chatId: piece.target.chatId, text: piece.text, attempts: 0, error })
      yield* Effect.logError(`did not send ${piece.idempotencyKey} to ${piece.target.chatId}: ${error} (kept in the dead-letter log)`)
      results.push({ idempotencyKey: piece.idempotencyKey, error, skipped: false })
      continue
    }
    const sent = yield* sendWithRetry(connection, log, piece, policy)
    if (sent._tag === "Sent") {
      yield* log.markSent(piece.idempotencyKey, sent.messageId).pipe(
        Effect.catch((error) => Effect.logError(`sent ${piece.idempotencyKey} to ${piece.target.chatId} but could not record it (${error.message}): a restart may send it again`))
      )
      results.push({ idempotencyKey: piece.idempotencyKey, messageId: sent.messageId, skipped: false })
      continue
    }
    const { error, attempts } = sent
    const at = yield* Clock.currentTimeMillis
    yield* log.deadLetter({ at, idempotencyKey: piece.idempotencyKey, chatId: piece.target.chatId, text: piece.text, attempts, error: error.message })
    yield* Effect.logError(`gave up sending to ${piece.target.chatId} after ${attempts} attempt(s): ${error.message} (kept in the dead-letter log)`)
    results.push({ idempotencyKey: piece.idempotencyKey, error: error.message, skipped: false })
  }
  return results
})
