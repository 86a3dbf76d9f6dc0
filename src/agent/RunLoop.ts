/**
 * One agent turn: persist the user's message, call the model, run the tool
 * calls it asks for, call it again, until it stops. Every message is
 * persisted as it completes, and an interrupted turn (abort, timeout, client
 * gone) still leaves a transcript the provider will accept.
 */
import { Cause, Context, Duration, Effect, Stream } from "effect"
import { type AssistantMessage, addUsage, emptyUsage, type ImagePart, type Message, type TextPart, type ToolResultMessage, toolCallsOf, type Usage, type UserMessage } from "./Message.ts"
import type { AgentSettings } from "./AgentSettings.ts"
import { ToolRegistry, type Tool } from "./Tool.ts"
import { TurnTimeout, type TurnEvent } from "./TurnEvent.ts"
import * as Compaction from "./Compaction.ts"
import { Models } from "../provider/Models.ts"
import type { ProviderError, ThinkingLevel, ToolChoice } from "../provider/Provider.ts"
import type { AppendOptions, StoreError } from "../session/SessionStore.ts"
import type { SessionKind } from "../session/SessionKey.ts"
import * as Transcript from "../session/Transcript.ts"

/** Bounds a runaway tool loop; OpenClaw's own budget is of the same order. */
export const MAX_MODEL_CALLS_PER_TURN = 32

export interface TurnInput {
  readonly runId: string
  readonly text: string
  readonly images?: ReadonlyArray<ImagePart> | undefined
  /** Instructions a client sends with this turn only (e.g. OpenAI system messages); never persisted. */
  readonly extraSystemPrompt?: string | undefined
  /** Tools the client runs itself: a call to one ends the turn and is handed back to the client. */
  readonly clientTools?: ReadonlyArray<ClientToolSpec> | undefined
  /**
   * The turn's first model call must call a tool, or this one (a client's
   * `tool_choice` "required" or a named function); later calls of the turn
   * choose freely, so a tool loop can end.
   */
  readonly forceToolCall?: ToolChoice | undefined
  /**
   * Start a fresh session (archive the transcript, new session id) before this
   * turn, in the same envelope, so nothing can run between the reset and the
   * message (a chat `/new <message>`); `model` becomes the session's model.
   */
  readonly newSession?: { readonly model?: string | undefined } | undefined
  /**
   * A `provider/model` id for this turn only, ahead of the session's and the
   * agent's models (OpenClaw's x-openclaw-model); the session keeps its own.
   */
  readonly modelOverride?: string | undefined
  /** A thinking level for this turn only, over the session's and the agent's (OpenClaw's agent `thinking`). */
  readonly thinking?: ThinkingLevel | undefined
  /**
   * The session was made for this one turn (an OpenAI request without `user`
   * or session header gets a fresh key): its actor is passivated as soon as
   * the turn ends instead of after the idle timeout. Its transcript and index
   * entry stay; a later message to the same key loads them again.
   */
  readonly oneShot?: boolean | undefined
  /** Sampling for this turn's model calls, where the provider supports it. */
  readonly sampling?: {
    readonly temperature?: number | undefined
    readonly topP?: number | undefined
    readonly maxTokens?: number | undefined
    readonly stop?: ReadonlyArray<string> | undefined
  } | undefined
}

export interface ClientToolSpec {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Readonly<Record<string, unknown>>
}

/** What a client tool call's result says in the transcript: the client holds the real result. */
export const CLIENT_TOOL_RESULT = "Handed to the client application to run; its result arrives with the next message."

/** The section a turn's extra instructions get in the system prompt. */
export const withExtraSystemPrompt = (system: string, extra: string | undefined): string =>
  extra === undefined || extra.trim() === "" ? system : `${system}\n\n## Client Instructions\n${extra.trim()}`

/** The session as the run loop sees it: its entries and the one way to append. */
export interface TurnSession {
  readonly key: string
  readonly agentId: string
  readonly sessionId: string
  readonly kind: SessionKind
  readonly entries: Effect.Effect<ReadonlyArray<Transcript.Entry>>
  /** Appends to the transcript (SessionStore.append's options) and to memory. */
  readonly persist: (entries: ReadonlyArray<Transcript.Entry>, options?: AppendOptions) => Effect.Effect<void, StoreError | Transcript.TranscriptInvariantError>
  /** Called as each model call completes, with its usage and `provider/model`. */
  readonly addUsage: (usage: Usage, model: string) => Effect.Effect<void>
  /** Called as each model call's answer begins (the provider's `Started`). */
  readonly answerStarted?: Effect.Effect<void>
}

export interface TurnResult {
  readonly text: string
  readonly model: string
  readonly stopReason: AssistantMessage["stopReason"]
  readonly usage: Usage
  /** Usage of the last model call: what the context holds now. */
  readonly lastCallUsage: Usage
}

/** Builds the system prompt for a turn; the workspace subsystem provides it. */
export class SystemPromptSource extends Context.Service<SystemPromptSource, {
  readonly build: (settings: AgentSettings, session: { readonly key: string; readonly kind: SessionKind }, tools: ReadonlyArray<Tool>) => Effect.Effect<string>
}>()("beamclaw/agent/SystemPromptSource") {}

export type TurnError = ProviderError | StoreError | Transcript.TranscriptInvariantError | TurnTimeout

const lastId = (entries: ReadonlyArray<Transcript.Entry>) => entries.at(-1)?.id ?? null

const summaryPreamble = (summary: string): Message => ({
  role: "user",
  content: `The earlier part of this conversation was compacted into this summary:\n<summary>\n${summary}\n</summary>`,
  timestamp: 0
})

const sameContent = (a: UserMessage["content"], b: UserMessage["content"]): boolean =>
  typeof a === "string" || typeof b === "string"
    ? a === b
    : a.length === b.length && a.every((part, i) => JSON.stringify(part) === JSON.stringify(b[i]))

const renderToolOutput = (content: ReadonlyArray<TextPart | ImagePart>) =>
  content.map((part) => part.type === "text" ? part.text : `[image ${part.mimeType}]`).join("\n")

// fnUntraced, like compactIfNeeded: both run on every turn, and a traced Effect.fn
// costs a span and a captured stack (about 3 µs) per call with no tracer to see them.
export const runTurn = Effect.fnUntraced(function*(
  session: TurnSession,
  settings: AgentSettings,
  input: TurnInput,
  emit: (event: TurnEvent) => Effect.Effect<void>
): Effect.fn.Return<TurnResult, TurnError, Models | ToolRegistry | SystemPromptSource> {
  const models = yield* Models
  const registry = yield* ToolRegistry
  const prompts = yield* SystemPromptSource

  const body = Effect.gen(function*() {
    const entries = yield* session.entries
    const userContent: Message = input.images !== undefined && input.images.length > 0
      ? { role: "user", content: [{ type: "text", text: input.text }, ...input.images], timestamp: Date.now() }
      : { role: "user", content: input.text, timestamp: Date.now() }
    // The same message again right after it went unanswered (a turn that failed, retried by the client, as the
    // OpenAI SDK does on a 5xx) is that message, not a second one: the history keeps it once.
    const previous = entries.at(-1)
    const retried = previous?.type === "message" && previous.message.role === "user" && sameContent(previous.message.content, userContent.content)
    // In the background: a transcript that is not open yet (a new session, or one idle for a while) is
    // opened while the model is called, and the turn's last message, written durably, waits for it.
    if (!retried) yield* session.persist([Transcript.messageEntry(userContent, lastId(entries))], { background: true })

    const system = withExtraSystemPrompt(yield* prompts.build(settings, { key: session.key, kind: session.kind }, registry.list), input.extraSystemPrompt)
    // Our own tools win a name clash: a client cannot shadow them.
    const clientTools = (input.clientTools ?? []).filter((tool) => registry.get(tool.name) === undefined)
    const clientToolNames = new Set(clientTools.map((tool) => tool.name))
    const toolSpecs = [
      ...registry.list.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema })),
      ...clientTools.map((tool) => ({ name: tool.name, description: tool.description ?? "", inputSchema: tool.parameters }))
    ]
    let usage = emptyUsage
    let lastCallUsage = emptyUsage
    let finalText = ""
    let finalModel = settings.modelChain[0] ?? ""
    let stopReason: AssistantMessage["stopReason"] = "stop"

    for (let call = 0; call < MAX_MODEL_CALLS_PER_TURN; call++) {
      const context = Transcript.contextMessages(yield* session.entries)
      const messages = context.summary === undefined ? context.messages : [summaryPreamble(context.summary), ...context.messages]
      // Plain variables, not Refs: only this fiber and its onExit touch them.
      let partial = ""
      let done: AssistantMessage | undefined

      yield* models.stream(settings.modelChain, {
        system,
        messages,
        tools: toolSpecs,
        maxTokens: input.sampling?.maxTokens ?? settings.maxTokens,
        thinking: settings.thinking,
        temperature: input.sampling?.temperature,
        topP: input.sampling?.topP,
        stopSequences: input.sampling?.stop,
        toolChoice: call === 0 ? input.forceToolCall : undefined
      }).pipe(
        Stream.runForEach((event) => {
          switch (event._tag) {
            case "Started":
              return session.answerStarted ?? Effect.void
            case "TextDelta":
              partial += event.text
              return emit({ _tag: "TextDelta", text: event.text })
            case "ThinkingDelta":
              return emit({ _tag: "ThinkingDelta", thinking: event.thinking })
            case "ToolCallStart":
              return Effect.void
            case "Failover":
              partial = ""
              return emit({ _tag: "Failover", from: event.from, to: event.to, reason: event.reason })
            case "Done":
              done = event.message
              return Effect.void
          }
        }),
        // A model call cut short (abort, timeout, a stream that broke) keeps
        // what the user already saw, marked aborted or error.
        Effect.onExit((exit) =>
          Effect.gen(function*() {
            if (exit._tag === "Success") return
            const text = partial
            if (text.length === 0 || done !== undefined) return
            const failure = Cause.findError(exit.cause)
            const aborted: AssistantMessage = {
              role: "assistant",
              content: [{ type: "text", text }],
              provider: "",
              model: finalModel,
              usage: emptyUsage,
              stopReason: failure._tag === "Success" ? "error" : "aborted",
              ...(failure._tag === "Success" ? { errorMessage: failure.success.message } : {}),
              timestamp: Date.now()
            }
            yield* session.persist([Transcript.messageEntry(aborted, lastId(yield* session.entries))], { sync: true }).pipe(Effect.ignore)
          })
        )
      )
      const message: AssistantMessage | undefined = done
      if (message === undefined) break
      const allCalls = toolCallsOf(message)
      // Calls to client tools go back to the client: they end the turn after our own tools ran.
      const handedBack = allCalls.filter((c) => clientToolNames.has(c.name))
      const calls = allCalls.filter((c) => !clientToolNames.has(c.name))
      const final = allCalls.length === 0 || message.stopReason !== "toolUse"
      usage = addUsage(usage, message.usage)
      lastCallUsage = message.usage
      finalModel = message.provider === "" ? message.model : `${message.provider}/${message.model}`
      stopReason = message.stopReason
      finalText = message.content.map((part) => part.type === "text" ? part.text : "").join("")
      yield* session.addUsage(message.usage, finalModel)

      // From the moment an assistant message with tool calls is on disk until
      // every call has its result, any exit (abort, timeout, failure) closes
      // the calls still open, so the history stays one the API accepts.
      const remaining = new Map(allCalls.map((c) => [c.id, c]))
      const closeRemaining = (text: string) =>
        Effect.suspend(() => remaining.size === 0 ? Effect.void : session.persist(
          [...remaining.values()].map((c) => Transcript.messageEntry(Transcript.syntheticToolResult(c, text), null)),
          { sync: true }
        )).pipe(Effect.ignore)
      yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // The turn's last message is forced to disk; earlier ones ride on the page cache.
          yield* session.persist([Transcript.messageEntry(message, lastId(yield* session.entries))], { sync: final })
          if (final) {
            // The model stopped without waiting for its tool calls: close them.
            yield* closeRemaining("Not run: the model ended its turn.")
            return
          }
          yield* restore(Effect.forEach(calls, (toolCall) =>
            Effect.gen(function*() {
              yield* emit({ _tag: "ToolStarted", id: toolCall.id, name: toolCall.name, input: toolCall.arguments })
              const tool = registry.get(toolCall.name)
              const output = tool === undefined
                ? { content: [{ type: "text" as const, text: `Unknown tool ${toolCall.name}. Available: ${registry.list.map((t) => t.name).join(", ") || "none"}.` }], isError: true }
                : yield* tool.run(toolCall.arguments, { sessionKey: session.key, agentId: session.agentId, workspace: settings.workspace, toolCallId: toolCall.id }).pipe(
                  Effect.catchTag("ToolError", (error) => Effect.succeed({ content: [{ type: "text" as const, text: error.message }], isError: true }))
                )
              const result: ToolResultMessage = {
                role: "toolResult",
                toolCallId: toolCall.id,
                toolName: toolCall.name,
                content: output.content,
                isError: output.isError === true,
                timestamp: Date.now()
              }
              yield* session.persist([Transcript.messageEntry(result, lastId(yield* session.entries))])
              remaining.delete(toolCall.id)
              yield* emit({ _tag: "ToolFinished", id: toolCall.id, name: toolCall.name, isError: result.isError, output: renderToolOutput(output.content) })
            }), { discard: true })).pipe(
              Effect.onExit((exit) => exit._tag === "Success" ? Effect.void : closeRemaining("Tool call stopped before it finished."))
            )
          if (handedBack.length > 0) {
            for (const call of handedBack) yield* emit({ _tag: "ToolStarted", id: call.id, name: call.name, input: call.arguments })
            yield* closeRemaining(CLIENT_TOOL_RESULT)
          }
        })
      )
      if (final) break
      if (handedBack.length > 0) {
        stopReason = "toolUse"
        break
      }
      if (call === MAX_MODEL_CALLS_PER_TURN - 1) stopReason = "length"
    }
    return { text: finalText, model: finalModel, stopReason, usage, lastCallUsage }
  })

  const result = yield* body.pipe(
    Effect.timeoutOrElse({
      duration: Duration.seconds(settings.timeoutSeconds),
      orElse: () => Effect.fail(new TurnTimeout({ sessionKey: session.key, timeoutSeconds: settings.timeoutSeconds, message: `the turn took longer than ${settings.timeoutSeconds}s and was stopped` }))
    })
  )

  yield* emit({ _tag: "TurnCompleted", runId: input.runId, text: result.text, model: result.model, stopReason: result.stopReason, usage: result.usage })
  return result
})

/**
 * After a completed turn: compacts the history when the context nears the
 * model's window. It runs outside the turn, so an abort arriving now cannot
 * undo an answer already given; a failure is logged and retried next turn.
 */
export const compactIfNeeded = Effect.fnUntraced(function*(
  session: TurnSession,
  settings: AgentSettings,
  result: TurnResult,
  emit: (event: TurnEvent) => Effect.Effect<void>
): Effect.fn.Return<void, never, Models> {
  const models = yield* Models
  const window = Math.min(models.contextWindow(settings.modelChain[0] ?? "") ?? settings.contextTokens, settings.contextTokens)
  const last = result.lastCallUsage
  const contextTokens = last.input + last.cacheRead + last.cacheWrite + last.output
  if (!Compaction.shouldCompact(contextTokens, window, settings.reserveTokens)) return
  const compacted = yield* Compaction.compact(session, settings, contextTokens).pipe(
    // Bounded like a turn: it holds the session and a slot of the run lane.
    Effect.timeoutOrElse({
      duration: Duration.seconds(settings.timeoutSeconds),
      orElse: () => Effect.fail(new Error(`it took longer than ${settings.timeoutSeconds}s and was stopped; the history is unchanged`))
    }),
    Effect.catch((error) => Effect.logWarning(`compaction of ${session.key} failed, will retry after the next turn: ${error.message}`).pipe(Effect.as(undefined)))
  )
  if (compacted !== undefined) yield* emit({ _tag: "Compacted", tokensBefore: compacted.tokensBefore, summaryChars: compacted.summary.length })
})
