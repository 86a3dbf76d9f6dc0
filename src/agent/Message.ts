/**
 * The conversation vocabulary shared by transcripts, the run loop and every
 * provider. Shapes follow OpenClaw's transcript format (pi-ai AgentMessage),
 * so a BeamClaw transcript reads like an OpenClaw one.
 */
import { Schema } from "effect"

export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String
})
export type TextPart = typeof TextPart.Type

export const ImagePart = Schema.Struct({
  type: Schema.Literal("image"),
  data: Schema.String,
  mimeType: Schema.String
})
export type ImagePart = typeof ImagePart.Type

export const ThinkingPart = Schema.Struct({
  type: Schema.Literal("thinking"),
  thinking: Schema.String,
  thinkingSignature: Schema.optionalKey(Schema.String)
})
export type ThinkingPart = typeof ThinkingPart.Type

export const ToolCallPart = Schema.Struct({
  type: Schema.Literal("toolCall"),
  id: Schema.NonEmptyString,
  name: Schema.NonEmptyString,
  arguments: Schema.Unknown
})
export type ToolCallPart = typeof ToolCallPart.Type

export const StopReason = Schema.Literals(["stop", "toolUse", "length", "error", "aborted"])
export type StopReason = typeof StopReason.Type

export const Usage = Schema.Struct({
  input: Schema.Number,
  output: Schema.Number,
  cacheRead: Schema.Number,
  cacheWrite: Schema.Number,
  totalTokens: Schema.Number
})
export type Usage = typeof Usage.Type

export const emptyUsage: Usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 }

export const addUsage = (a: Usage, b: Usage): Usage => ({
  input: a.input + b.input,
  output: a.output + b.output,
  cacheRead: a.cacheRead + b.cacheRead,
  cacheWrite: a.cacheWrite + b.cacheWrite,
  totalTokens: a.totalTokens + b.totalTokens
})

export const UserMessage = Schema.Struct({
  role: Schema.Literal("user"),
  content: Schema.Union([Schema.String, Schema.Array(Schema.Union([TextPart, ImagePart]))]),
  timestamp: Schema.Number
})
export type UserMessage = typeof UserMessage.Type

export const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.Array(Schema.Union([TextPart, ThinkingPart, ToolCallPart])),
  provider: Schema.String,
  model: Schema.String,
  usage: Usage,
  stopReason: StopReason,
  errorMessage: Schema.optionalKey(Schema.String),
  timestamp: Schema.Number
})
export type AssistantMessage = typeof AssistantMessage.Type

export const ToolResultMessage = Schema.Struct({
  role: Schema.Literal("toolResult"),
  toolCallId: Schema.NonEmptyString,
  toolName: Schema.String,
  content: Schema.Array(Schema.Union([TextPart, ImagePart])),
  isError: Schema.Boolean,
  timestamp: Schema.Number
})
export type ToolResultMessage = typeof ToolResultMessage.Type

export const Message = Schema.Union([UserMessage, AssistantMessage, ToolResultMessage])
export type Message = typeof Message.Type

export const toolCallsOf = (message: AssistantMessage): ReadonlyArray<ToolCallPart> =>
  message.content.filter((part): part is ToolCallPart => part.type === "toolCall")

export const textOf = (message: Message): string => {
  if (typeof message.content === "string") return message.content
  let text = ""
  for (const part of message.content) {
    if (part.type === "text") text += part.text
  }
  return text
}
