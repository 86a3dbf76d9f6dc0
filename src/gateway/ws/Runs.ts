/**
 * A gateway-owned run: one turn drained in the hub's fiber set, whatever
 * happens to the connection that asked for it, rendered as OpenClaw's
 * `agent` events (lifecycle / assistant / tool / compaction streams) and
 * `chat` events (throttled full-text deltas, then final, aborted or error).
 */
import { Cause, Deferred, Effect, Stream } from "effect"
import type { ImagePart } from "../../agent/Message.ts"
import type { ThinkingLevel } from "../../provider/Provider.ts"
import { Sessions } from "../../session/Sessions.ts"
import { SessionEvents } from "../rpc/SessionEvents.ts"
import type { Hub, RunRecord } from "./Hub.ts"

/** OpenClaw emits a chat delta at most every 150 ms per run. */
export const CHAT_DELTA_INTERVAL_MS = 150

export interface RunInput {
  readonly runId: string
  readonly sessionKey: string
  readonly text: string
  readonly images?: ReadonlyArray<ImagePart> | undefined
  readonly kind: "chat" | "agent"
  /** This turn's own `provider/model`, thinking level and extra instructions (RunLoop.TurnInput). */
  readonly modelOverride?: string | undefined
  readonly thinking?: ThinkingLevel | undefined
  readonly extraSystemPrompt?: string | undefined
}

const assistantMessage = (text: string) => ({ role: "assistant", content: [{ type: "text", text }], timestamp: Date.now() })

const drive = (hub: Hub, run: RunRecord, input: RunInput) =>
  Effect.gen(function*() {
    // Through SessionEvents, so RPC subscribers see WebSocket turns too.
    const sessions = yield* SessionEvents
    let agentSeq = 0
    let chatSeq = 0
    let lastDeltaAt = 0
    let deltaPending = false
    const agentEvent = (stream: string, data: Record<string, unknown>) =>
      hub.broadcast("agent", { runId: run.runId, seq: ++agentSeq, stream, ts: Date.now(), data, sessionKey: run.sessionKey }, { sessionKey: run.sessionKey })
    const chatEvent = (state: "delta" | "final" | "aborted" | "error", extra: Record<string, unknown>) =>
      hub.broadcast("chat", { runId: run.runId, sessionKey: run.sessionKey, seq: ++chatSeq, state, ...extra }, { dropIfSlow: state === "delta", sessionKey: run.sessionKey })
    const flushDelta = () => {
      if (!deltaPending) return
      deltaPending = false
      lastDeltaAt = Date.now()
      chatEvent("delta", { message: assistantMessage(run.text) })
    }

    const exit = yield* sessions.send(run.sessionKey, {
      runId: run.runId,
      text: input.text,
      images: input.images,
      modelOverride: input.modelOverride,
      thinking: input.thinking,
      extraSystemPrompt: input.extraSystemPrompt
    }).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          switch (event._tag) {
            case "TurnStarted":
              run.sessionId = event.sessionId
              agentEvent("lifecycle", { phase: "start", startedAt: run.startedAt })
              return
            case "TextDelta": {
              run.text += event.text
              agentEvent("assistant", { text: run.text, delta: event.text })
              deltaPending = true
              if (Date.now() - lastDeltaAt >= CHAT_DELTA_INTERVAL_MS) flushDelta()
              return
            }
            case "ThinkingDelta":
              agentEvent("thinking", { delta: event.thinking })
              return
            case "ToolStarted":
              agentEvent("tool", { phase: "start", name: event.name, toolCallId: event.id, args: event.input })
              return
            case "ToolFinished":
              agentEvent("tool", { phase: "result", name: event.name, toolCallId: event.id, isError: event.isError, result: event.output })
              return
            case "Compacted":
              agentEvent("compaction", { phase: "end", willRetry: false, tokensBefore: event.tokensBefore })
              return
            case "Failover":
              agentEvent("lifecycle", { phase: "fallback", from: event.from, to: event.to, reason: event.reason })
              return
            case "TurnCompleted":
              run.text = event.text
              run.model = event.model
              run.usage = { input: event.usage.input, output: event.usage.output, cacheRead: event.usage.cacheRead, cacheWrite: event.usage.cacheWrite, total: event.usage.totalTokens }
              return
          }
        })
      ),
      Effect.exit
    )

    run.endedAt = Date.now()
    if (exit._tag === "Success") {
      flushDelta()
      run.status = "ok"
      agentEvent("lifecycle", { phase: "end", endedAt: run.endedAt })
      chatEvent("final", { message: assistantMessage(run.text), stopReason: "stop", ...(run.usage === undefined ? {} : { usage: run.usage }) })
      return
    }
    const failure = Cause.findError(exit.cause)
    const error = failure._tag === "Success" ? failure.success : undefined
    if (error === undefined || error._tag === "TurnAborted") {
      run.status = "aborted"
      run.error = error?.message ?? "the run was interrupted"
      agentEvent("lifecycle", { phase: "end", endedAt: run.endedAt, aborted: true })
      chatEvent("aborted", { ...(run.text === "" ? {} : { message: assistantMessage(run.text) }), stopReason: "aborted" })
      return
    }
    run.error = error.message
    if (error._tag === "TurnTimeout") {
      run.status = "timeout"
      run.errorCode = "AGENT_TIMEOUT"
    } else {
      run.status = "error"
      run.errorCode = error._tag === "InvalidSessionKey" || error._tag === "UnknownAgent" ? "INVALID_REQUEST" : "UNAVAILABLE"
    }
    const errorKind = error._tag === "TurnTimeout"
      ? "timeout"
      : error._tag === "ProviderError" && error.reason === "RateLimited"
      ? "rate_limit"
      : "unknown"
    agentEvent("lifecycle", { phase: "error", error: error.message, endedAt: run.endedAt })
    chatEvent("error", { errorMessage: error.message, errorKind })
  }).pipe(
    Effect.onExit((exit) =>
      Effect.gen(function*() {
        // Interrupted by gateway shutdown before it could finish on its own.
        if (run.status === "running") {
          run.status = "aborted"
          run.endedAt = Date.now()
          run.error = exit._tag === "Failure" ? "the gateway stopped during the run" : run.error
        }
        hub.runEnded(run)
        yield* Deferred.succeed(run.done, undefined)
      })
    )
  )

/** Registers and starts a run; it keeps going after the caller leaves. */
export const start = (hub: Hub, input: RunInput) =>
  Effect.gen(function*() {
    const run = yield* hub.newRun(input.runId, input.sessionKey, input.kind)
    const context = yield* Effect.context<Sessions | SessionEvents>()
    yield* hub.fork(drive(hub, run, input).pipe(Effect.provideContext(context)))
    return run
  })

export const waitResult = (run: RunRecord) => ({
  runId: run.runId,
  status: run.status === "ok" ? "ok" : run.status === "timeout" ? "timeout" : run.status === "running" ? "timeout" : "error",
  startedAt: run.startedAt,
  ...(run.endedAt === undefined ? {} : { endedAt: run.endedAt }),
  ...(run.error === undefined ? {} : { error: run.error })
})
