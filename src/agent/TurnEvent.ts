/**
 * What a running turn tells its caller, in order. Every gateway surface (HTTP
 * SSE, the WebSocket protocol, RPC, the CLI) renders these.
 */
import { Schema } from "effect"
import { StopReason, Usage } from "./Message.ts"

export const TurnEvent = Schema.Union([
  Schema.TaggedStruct("TurnStarted", { runId: Schema.String, sessionKey: Schema.String, sessionId: Schema.String }),
  Schema.TaggedStruct("TextDelta", { text: Schema.String }),
  Schema.TaggedStruct("ThinkingDelta", { thinking: Schema.String }),
  Schema.TaggedStruct("ToolStarted", { id: Schema.String, name: Schema.String, input: Schema.Unknown }),
  Schema.TaggedStruct("ToolFinished", { id: Schema.String, name: Schema.String, isError: Schema.Boolean, output: Schema.String }),
  Schema.TaggedStruct("Failover", { from: Schema.String, to: Schema.String, reason: Schema.String }),
  Schema.TaggedStruct("Compacted", { tokensBefore: Schema.Number, summaryChars: Schema.Number }),
  Schema.TaggedStruct("TurnCompleted", {
    runId: Schema.String,
    text: Schema.String,
    model: Schema.String,
    stopReason: StopReason,
    usage: Usage
  })
])
export type TurnEvent = typeof TurnEvent.Type

export class TurnTimeout extends Schema.TaggedError<TurnTimeout>()("TurnTimeout", {
  sessionKey: Schema.String,
  timeoutSeconds: Schema.Number,
  message: Schema.String
}) {}

export class TurnAborted extends Schema.TaggedError<TurnAborted>()("TurnAborted", {
  sessionKey: Schema.String,
  message: Schema.String
}) {}

export class SessionCrashed extends Schema.TaggedError<SessionCrashed>()("SessionCrashed", {
  sessionKey: Schema.String,
  message: Schema.String
}) {}

export class SessionUnavailable extends Schema.TaggedError<SessionUnavailable>()("SessionUnavailable", {
  sessionKey: Schema.String,
  message: Schema.String
}) {}
