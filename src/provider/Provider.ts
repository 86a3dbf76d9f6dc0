/**
 * The Provider boundary: one streaming model call. The run loop speaks only
 * this interface; Anthropic, OpenAI-compatible servers and test providers
 * implement it.
 */
import { Schema, type Stream } from "effect"
import type { AssistantMessage, Message, StopReason, Usage } from "../agent/Message.ts"

export interface ToolSpec {
  readonly name: string
  readonly description: string
  /** JSON Schema of the tool's input object. */
  readonly inputSchema: Record<string, unknown>
}

export type ThinkingLevel = "off" | "minimal" | "low" | "medium" | "high" | "xhigh"

export interface ProviderRequest {
  /** The model id without its provider prefix, e.g. `claude-sonnet-4-5`. */
  readonly model: string
  readonly system: string
  readonly messages: ReadonlyArray<Message>
  readonly tools: ReadonlyArray<ToolSpec>
  readonly maxTokens: number
  readonly thinking?: ThinkingLevel | undefined
  readonly temperature?: number | undefined
  readonly topP?: number | undefined
  readonly stopSequences?: ReadonlyArray<string> | undefined
  /** The model must call a tool (`any`) or this one (`tool`), as a client's `tool_choice` asks; by default it chooses. */
  readonly toolChoice?: ToolChoice | undefined
}

export type ToolChoice = { readonly _tag: "any" } | { readonly _tag: "tool"; readonly name: string }

/** What a provider streams while a model call runs; `Done` closes every successful stream. */
export type ProviderEvent =
  /** The provider accepted the request and its answer has begun (Anthropic's message_start, the first OpenAI chunk); no output yet. */
  | { readonly _tag: "Started" }
  | { readonly _tag: "TextDelta"; readonly text: string }
  | { readonly _tag: "ThinkingDelta"; readonly thinking: string }
  | { readonly _tag: "ToolCallStart"; readonly id: string; readonly name: string }
  | { readonly _tag: "Done"; readonly message: AssistantMessage; readonly stopReason: StopReason; readonly usage: Usage }

export const ProviderErrorReason = Schema.Literals([
  "MissingApiKey",
  "Auth",
  "BadRequest",
  "ContextOverflow",
  "NotFound",
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "Connection",
  "MalformedStream",
  "Unknown"
])
export type ProviderErrorReason = typeof ProviderErrorReason.Type

export class ProviderError extends Schema.TaggedError<ProviderError>()("ProviderError", {
  provider: Schema.String,
  model: Schema.String,
  reason: ProviderErrorReason,
  message: Schema.String,
  status: Schema.optionalKey(Schema.Number),
  retryAfterMs: Schema.optionalKey(Schema.Number)
}) {
  /** Worth another attempt on the same model after a pause. */
  get retryable(): boolean {
    return this.reason === "RateLimited" || this.reason === "Overloaded" || this.reason === "ServerError" ||
      this.reason === "Timeout" || this.reason === "Connection" || this.reason === "MalformedStream"
  }
  /** Worth moving on to the next configured model. */
  get failover(): boolean {
    return this.retryable || this.reason === "Auth" || this.reason === "MissingApiKey" || this.reason === "NotFound"
  }
}

/** One configured model backend: streams a single model call. */
export interface Provider {
  readonly id: string
  readonly stream: (request: ProviderRequest) => Stream.Stream<ProviderEvent, ProviderError>
}
