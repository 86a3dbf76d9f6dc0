/**
 * Turns a running agent turn (TurnEvents) into OpenAI chat completion output:
 * SSE `chat.completion.chunk`s for streaming, one `chat.completion` object
 * otherwise. Client tools (the request's `tools`) surface as `tool_calls`
 * with finish_reason "tool_calls": the client runs them and sends the
 * results back in its next request.
 */
import type { Usage } from "../../agent/Message.ts"
import type { TurnEvent } from "../../agent/TurnEvent.ts"
import type { TurnFailure } from "../../session/SessionActor.ts"
import type { InvalidSessionKey } from "../../session/SessionKey.ts"
import type { SessionUnavailable } from "../../agent/TurnEvent.ts"
import type { ToolCall, ToolChoice } from "./ChatRequest.ts"
import { openAiError, type OpenAiError } from "./OpenAiError.ts"

export type FinishReason = "stop" | "length" | "tool_calls"

export interface OpenAiUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
}

export const toOpenAiUsage = (usage: Usage | undefined): OpenAiUsage => {
  if (usage === undefined) return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }
  const prompt = usage.input + usage.cacheRead + usage.cacheWrite
  return { prompt_tokens: prompt, completion_tokens: usage.output, total_tokens: prompt + usage.output }
}

export type SendFailure = TurnFailure | InvalidSessionKey | SessionUnavailable

/** A failed turn as an OpenAI error. */
export const turnFailure = (error: SendFailure): OpenAiError => {
  switch (error._tag) {
    case "ProviderError":
      return error.reason === "RateLimited"
        ? openAiError(429, `The model provider is rate limiting: ${error.message}`, { type: "rate_limit_error", code: "upstream_rate_limited" })
        : openAiError(502, `The model call failed (${error.provider}/${error.model}, ${error.reason}): ${error.message}`, { code: "upstream_error" })
    case "TurnTimeout":
      return openAiError(504, error.message, { code: "timeout" })
    case "TurnAborted":
      return openAiError(499, `The run was aborted: ${error.message}`, { code: "aborted" })
    case "SessionUnavailable":
    case "SessionCrashed":
      return openAiError(503, error.message, { code: "session_unavailable" })
    case "UnknownAgent":
      return openAiError(404, error.message, { param: "model", code: "model_not_found" })
    case "InvalidSessionKey":
      return openAiError(400, error.message, { param: "x-beamclaw-session-key", code: "invalid_session_key" })
    default:
      return openAiError(500, `internal error: ${error.message}`, { code: "internal_error" })
  }
}

const missingToolCall = (choice: ToolChoice): OpenAiError =>
  openAiError(502, choice._tag === "function"
    ? `The agent answered without calling the function ${JSON.stringify(choice.name)} that tool_choice requires.`
    : "The agent answered without calling one of the client tools, but tool_choice is \"required\".", { code: "tool_call_missing" })

export interface Step {
  /** SSE chunk payloads to send for this event. */
  readonly chunks: ReadonlyArray<unknown>
  /** Nothing more is wanted from this turn: the client has tool calls to run. */
  readonly stop: boolean
}

/**
 * The state of one completion as events arrive. It is shared by streaming and
 * non-streaming responses, so both agree on text, tool calls and finish reason.
 */
export class CompletionState {
  readonly id: string
  readonly model: string
  readonly created: number
  readonly toolChoice: ToolChoice
  readonly clientTools: ReadonlySet<string>
  readonly toolCalls: Array<ToolCall> = []
  /** Text sent so far (streaming) or collected (non-streaming). */
  text = ""
  /** Prose held back while a required client tool call is not confirmed yet. */
  held = ""
  finalText: string | undefined = undefined
  usage: Usage | undefined = undefined
  stopReason: string | undefined = undefined

  constructor(options: { readonly id: string; readonly model: string; readonly toolChoice: ToolChoice; readonly clientTools: ReadonlyArray<string> }) {
    this.id = options.id
    this.model = options.model
    this.created = Math.floor(Date.now() / 1000)
    this.toolChoice = options.toolChoice
    this.clientTools = new Set(options.clientTools)
  }

  private get holdsProse(): boolean {
    return this.toolChoice._tag === "required" || this.toolChoice._tag === "function"
  }

  private isClientTool(name: string): boolean {
    return this.toolChoice._tag === "function" ? name === this.toolChoice.name : this.toolChoice._tag !== "none" && this.clientTools.has(name)
  }

  chunk(delta: Record<string, unknown>, finishReason: FinishReason | null = null): unknown {
    return {
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }]
    }
  }

  roleChunk(): unknown {
    return this.chunk({ role: "assistant", content: "" })
  }

  onEvent(event: TurnEvent): Step {
    switch (event._tag) {
      case "TextDelta": {
        // After client tool calls, any new output belongs to a model call the client did not ask for.
        if (this.toolCalls.length > 0) return { chunks: [], stop: true }
        if (event.text === "") return { chunks: [], stop: false }
        if (this.holdsProse) {
          this.held += event.text
          return { chunks: [], stop: false }
        }
        this.text += event.text
        return { chunks: [this.chunk({ content: event.text })], stop: false }
      }
      case "ToolStarted": {
        if (!this.isClientTool(event.name)) return { chunks: [], stop: this.toolCalls.length > 0 }
        const call: ToolCall = { id: event.id, name: event.name, arguments: JSON.stringify(event.input ?? {}) }
        const index = this.toolCalls.length
        this.toolCalls.push(call)
        const chunks: Array<unknown> = []
        if (this.held !== "") {
          // The call is confirmed, so the commentary before it can go out.
          chunks.push(this.chunk({ content: this.held }))
          this.text += this.held
          this.held = ""
        }
        chunks.push(this.chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }] }))
        return { chunks, stop: false }
      }
      case "ToolFinished":
        return { chunks: [], stop: this.toolCalls.length > 0 && !this.isClientTool(event.name) }
      case "TurnCompleted":
        this.finalText = event.text
        this.usage = event.usage
        this.stopReason = event.stopReason
        return { chunks: [], stop: true }
      default:
        // Once the client has calls to run, the turn is over for it.
        return { chunks: [], stop: this.toolCalls.length > 0 }
    }
  }

  get finishReason(): FinishReason {
    if (this.toolCalls.length > 0) return "tool_calls"
    return this.stopReason === "length" ? "length" : "stop"
  }

  /** The error to report instead of a completion, if the turn did not do what the request required. */
  get unmet(): OpenAiError | undefined {
    if (this.holdsProse && this.toolCalls.length === 0) return missingToolCall(this.toolChoice)
    return undefined
  }

  /** The last chunks of a stream that ended well: finish reason, then usage if asked. */
  closingChunks(includeUsage: boolean): ReadonlyArray<unknown> {
    const chunks: Array<unknown> = []
    if (this.text === "" && this.toolCalls.length === 0 && this.finalText !== undefined && this.finalText !== "") {
      // No deltas arrived (a provider that does not stream): send the answer whole.
      chunks.push(this.chunk({ content: this.finalText }))
    }
    chunks.push(this.chunk({}, this.finishReason))
    if (includeUsage) {
      chunks.push({ id: this.id, object: "chat.completion.chunk", created: this.created, model: this.model, choices: [], usage: toOpenAiUsage(this.usage) })
    }
    return chunks
  }

  /** The whole `chat.completion` object for a non-streaming request. */
  completion(): unknown {
    const content = this.toolCalls.length > 0
      ? this.text
      : (this.finalText !== undefined && this.finalText !== "" ? this.finalText : this.text) || "No response from BeamClaw."
    const message: Record<string, unknown> = { role: "assistant", content, refusal: null }
    if (this.toolCalls.length > 0) {
      message.tool_calls = this.toolCalls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }))
    }
    return {
      id: this.id,
      object: "chat.completion",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: this.finishReason }],
      usage: toOpenAiUsage(this.usage)
    }
  }
}
