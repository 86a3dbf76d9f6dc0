/**
 * The Tool boundary and the registry the run loop reads. Real tools arrive in
 * their own subsystem; the loop only needs a name, a schema and a handler.
 */
import { Context, type Effect, Layer, Schema } from "effect"
import type { ImagePart, TextPart } from "./Message.ts"

export interface ToolContext {
  readonly sessionKey: string
  readonly agentId: string
  readonly workspace: string
  readonly toolCallId: string
}

export interface ToolOutput {
  readonly content: ReadonlyArray<TextPart | ImagePart>
  readonly isError?: boolean | undefined
}

/** A failure the model should see and may recover from; defects crash the turn instead. */
export class ToolError extends Schema.TaggedError<ToolError>()("ToolError", {
  tool: Schema.String,
  message: Schema.String
}) {}

export interface Tool {
  readonly name: string
  /** One line shown in the system prompt's tool list. */
  readonly summary: string
  readonly description: string
  readonly inputSchema: Record<string, unknown>
  readonly run: (input: unknown, context: ToolContext) => Effect.Effect<ToolOutput, ToolError>
}

export class ToolRegistry extends Context.Service<ToolRegistry, {
  readonly list: ReadonlyArray<Tool>
  readonly get: (name: string) => Tool | undefined
}>()("beamclaw/agent/ToolRegistry") {
  static readonly make = (tools: ReadonlyArray<Tool>) => {
    const byName = new Map(tools.map((tool) => [tool.name, tool]))
    return ToolRegistry.of({ list: tools, get: (name) => byName.get(name) })
  }
  static readonly layer = (tools: ReadonlyArray<Tool>) => Layer.succeed(ToolRegistry)(ToolRegistry.make(tools))
  static readonly empty = ToolRegistry.layer([])
}
