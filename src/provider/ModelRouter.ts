/**
 * Retries and failover over Providers for one model call.
 *
 * Rules:
 * - A retryable error (ProviderError.retryable) retries the same model with
 *   exponential backoff, or after the server's retry-after when it sent one.
 * - Once the current attempt has emitted anything downstream, no retry and no
 *   failover happen: the error surfaces, so streamed text is never duplicated.
 * - After the retries, an error with `failover` moves on to the next ModelRef.
 * - BadRequest and ContextOverflow fail at once: the request is at fault, not
 *   the provider.
 * - There is no shared cooldown state, so one session's errors never bench a
 *   provider for another.
 *
 * Waits use Effect.sleep, so tests drive them with TestClock.
 */
import { Duration, Effect, Stream } from "effect"
import { formatModelRef, type ModelRef } from "./ModelRef.ts"
import { type Provider, ProviderError, type ProviderErrorReason, type ProviderEvent, type ProviderRequest } from "./Provider.ts"

export interface RetryOptions {
  /** Attempts per model, the first included. Default 3. */
  readonly maxAttempts?: number | undefined
  /** First backoff delay; doubles per retry. Default 1000 ms. */
  readonly baseDelayMs?: number | undefined
  /** Cap of the exponential backoff. Default 30 s. */
  readonly maxDelayMs?: number | undefined
  /**
   * Longest server-requested retry-after we wait for; a longer one skips the
   * remaining retries and fails over instead. Default 60 s.
   */
  readonly maxRetryAfterMs?: number | undefined
}

export interface ModelRouterOptions {
  /** Providers by configured id (the `provider` part of a ModelRef). */
  readonly providers: ReadonlyMap<string, Provider>
  readonly retry?: RetryOptions | undefined
  /**
   * Called before each retry wait. Retries are not stream events because
   * nothing reaches the user until an attempt streams; the default logs a warning.
   */
  readonly onRetry?: ((retry: RetryInfo) => Effect.Effect<void>) | undefined
}

/** The router is about to wait `delayMs` and call the same model again. */
export interface RetryInfo {
  /** `provider/model` */
  readonly model: string
  /** The attempt that is about to start, 2 for the first retry. */
  readonly attempt: number
  readonly delayMs: number
  readonly reason: ProviderErrorReason
  readonly message: string
}

/** The router gave up on `from` and is moving on to `to` (both `provider/model`). */
export interface FailoverEvent {
  readonly _tag: "Failover"
  readonly from: string
  readonly to: string
  readonly reason: ProviderErrorReason
  readonly message: string
}

export type RouterEvent = ProviderEvent | FailoverEvent

export interface ModelRouter {
  /**
   * Streams one model call over `chain` (primary first, then fallbacks). The
   * `Done` event's message names the model that answered. Fails with the last
   * model's error when every model failed.
   */
  readonly stream: (
    chain: ReadonlyArray<ModelRef>,
    request: Omit<ProviderRequest, "model">
  ) => Stream.Stream<RouterEvent, ProviderError>
}

export const defaultRetry = {
  maxAttempts: 3,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000
} as const

export const makeModelRouter = (options: ModelRouterOptions): ModelRouter => {
  const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? defaultRetry.maxAttempts)
  const baseDelayMs = options.retry?.baseDelayMs ?? defaultRetry.baseDelayMs
  const maxDelayMs = options.retry?.maxDelayMs ?? defaultRetry.maxDelayMs
  const maxRetryAfterMs = options.retry?.maxRetryAfterMs ?? defaultRetry.maxRetryAfterMs
  const onRetry = options.onRetry ?? ((retry: RetryInfo) =>
    Effect.logWarning(
      `${retry.model} failed (${retry.reason}: ${retry.message}); attempt ${retry.attempt} in ${retry.delayMs} ms`
    ))

  /** undefined: do not retry this error on the same model. */
  const retryDelay = (error: ProviderError, attempt: number): number | undefined => {
    if (!error.retryable || attempt >= maxAttempts) return undefined
    if (error.retryAfterMs !== undefined) {
      return error.retryAfterMs > maxRetryAfterMs ? undefined : Math.max(0, error.retryAfterMs)
    }
    return Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))
  }

  const unknownProvider = (ref: ModelRef) =>
    new ProviderError({
      provider: ref.provider,
      model: ref.model,
      reason: "NotFound",
      message: `Unknown provider "${ref.provider}" in model "${formatModelRef(ref)}". Configured providers: ${
        options.providers.size === 0 ? "(none)" : [...options.providers.keys()].join(", ")
      }`
    })

  const stream = (
    chain: ReadonlyArray<ModelRef>,
    request: Omit<ProviderRequest, "model">
  ): Stream.Stream<RouterEvent, ProviderError> => {
    const failures: Array<string> = []

    const summarise = (error: ProviderError): ProviderError =>
      failures.length === 0 ? error : new ProviderError({
        provider: error.provider,
        model: error.model,
        reason: error.reason,
        ...(error.status !== undefined ? { status: error.status } : {}),
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
        message: `${error.message} (earlier models failed too: ${failures.join("; ")})`
      })

    const attempt = (position: number, attemptNo: number): Stream.Stream<RouterEvent, ProviderError> =>
      Stream.suspend(() => {
        const ref = chain[position]
        if (ref === undefined) {
          return Stream.fail(
            new ProviderError({ provider: "", model: "", reason: "NotFound", message: "No model is configured" })
          )
        }
        const provider = options.providers.get(ref.provider)
        const source: Stream.Stream<ProviderEvent, ProviderError> = provider === undefined
          ? Stream.fail(unknownProvider(ref))
          : provider.stream({ ...request, model: ref.model })
        let emitted = false
        return source.pipe(
          // Per batch, not per event: the flag only has to be up before anything goes downstream.
          // `Started` is no output: a model that fails right after it still fails over.
          Stream.mapArray((batch) => {
            if (!emitted && batch.some((event) => event._tag !== "Started")) emitted = true
            return batch
          }),
          Stream.catch((error): Stream.Stream<RouterEvent, ProviderError> => {
            if (emitted) return Stream.fail(error)
            const name = formatModelRef(ref)
            const delayMs = retryDelay(error, attemptNo)
            if (delayMs !== undefined) {
              const wait = onRetry({
                model: name,
                attempt: attemptNo + 1,
                delayMs,
                reason: error.reason,
                message: error.message
              }).pipe(Effect.andThen(Effect.sleep(Duration.millis(delayMs))))
              return Stream.fromEffect(wait).pipe(Stream.drain, Stream.concat(attempt(position, attemptNo + 1)))
            }
            const next = chain[position + 1]
            if (error.failover && next !== undefined) {
              failures.push(`${name}: ${error.reason}: ${error.message}`)
              const failover: FailoverEvent = {
                _tag: "Failover",
                from: name,
                to: formatModelRef(next),
                reason: error.reason,
                message: error.message
              }
              return Stream.make<Array<RouterEvent>>(failover).pipe(Stream.concat(attempt(position + 1, 1)))
            }
            return Stream.fail(summarise(error))
          })
        )
      })

    return attempt(0, 1)
  }

  return { stream }
}
