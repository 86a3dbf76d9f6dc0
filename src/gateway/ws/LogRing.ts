/**
 * The recent log lines `logs.tail` serves: a fixed-size in-memory ring fed
 * by a logger installed beside the existing ones. OpenClaw tails its log
 * file; BeamClaw logs to stderr, so the ring is what a client can read back.
 */
import { Context, Effect, Layer, Logger } from "effect"

export const DEFAULT_CAPACITY = 2000

export interface TailResult {
  readonly cursor: number
  readonly lines: ReadonlyArray<string>
  readonly truncated: boolean
  /** True when the requested cursor is older than the ring holds (lines were lost). */
  readonly reset: boolean
  readonly size: number
}

export class LogRing extends Context.Service<LogRing, {
  readonly push: (line: string) => void
  /** Lines after `cursor` (or the last `limit` lines without one), at most `maxBytes` of text. */
  readonly tail: (options: { readonly cursor?: number | undefined; readonly limit: number; readonly maxBytes: number }) => TailResult
}>()("beamclaw/gateway/ws/LogRing") {
  static readonly make = (capacity: number = DEFAULT_CAPACITY) => {
    const ring: Array<string> = []
    // Number of lines ever written: a cursor is a position in that sequence.
    let written = 0
    let bytes = 0
    return LogRing.of({
      push: (line) => {
        ring.push(line)
        written += 1
        bytes += line.length + 1
        if (ring.length > capacity) bytes -= (ring.shift()?.length ?? 0) + 1
      },
      tail: ({ cursor, limit, maxBytes }) => {
        const first = written - ring.length
        const reset = cursor !== undefined && (cursor < first || cursor > written)
        const from = cursor === undefined || reset ? Math.max(first, written - limit) : cursor
        let selected = ring.slice(from - first, from - first + limit)
        let truncated = from - first + limit < ring.length
        let total = selected.reduce((sum, line) => sum + line.length + 1, 0)
        while (total > maxBytes && selected.length > 0) {
          // Keep the newest lines when trimming a tail without a cursor, the oldest when paging.
          if (cursor === undefined) {
            total -= (selected[0]?.length ?? 0) + 1
            selected = selected.slice(1)
          } else {
            total -= (selected[selected.length - 1]?.length ?? 0) + 1
            selected = selected.slice(0, -1)
          }
          truncated = true
        }
        const next = cursor === undefined || reset ? written : from + selected.length
        return { cursor: next, lines: selected, truncated, reset, size: bytes }
      }
    })
  }

  /** A ring plus a logger feeding it, added beside the loggers already installed. */
  static readonly layer = (capacity: number = DEFAULT_CAPACITY) =>
    Layer.unwrap(Effect.sync(() => {
      const ring = LogRing.make(capacity)
      const logger = Logger.make((options) => {
        ring.push(Logger.formatLogFmt.log(options))
      })
      return Layer.merge(Layer.succeed(LogRing)(ring), Logger.layer([logger], { mergeWithExisting: true }))
    }))
}
