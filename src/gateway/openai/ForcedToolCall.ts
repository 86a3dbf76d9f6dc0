/**
 * What a client's `tool_choice` asks of the turn, for both OpenAI endpoints:
 * "required" or a named function is forced on the turn's first model call
 * (the provider's own tool choice), and OpenClaw's nudge goes in the turn's
 * instructions too (the forced choice is dropped where a provider cannot
 * honour it, such as Anthropic with extended thinking).
 */
import type { ToolChoice as ProviderToolChoice } from "../../provider/Provider.ts"
import type { ToolChoice } from "./ChatRequest.ts"

export const forcedToolCall = (choice: ToolChoice): ProviderToolChoice | undefined =>
  choice._tag === "required" ? { _tag: "any" } : choice._tag === "function" ? { _tag: "tool", name: choice.name } : undefined

export const toolChoiceInstruction = (choice: ToolChoice): string | undefined =>
  choice._tag === "required"
    ? "You must call one of the available tools before responding."
    : choice._tag === "function"
    ? `You must call the ${choice.name} tool before responding.`
    : undefined
