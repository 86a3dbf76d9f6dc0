/**
 * What one turn needs to know about its agent, resolved from the config.
 * The run loop takes this plain value, so it does not depend on the config's shape.
 */
import type { ThinkingLevel } from "../provider/Provider.ts"

export interface AgentSettings {
  readonly agentId: string
  readonly name: string | undefined
  readonly workspace: string
  /** `provider/model` ids: the primary first, then the fallbacks. */
  readonly modelChain: ReadonlyArray<string>
  readonly timeoutSeconds: number
  readonly contextTokens: number
  readonly maxTokens: number
  readonly thinking: ThinkingLevel
  readonly bootstrapMaxChars: number
  readonly bootstrapTotalMaxChars: number
  readonly skipBootstrap: boolean
  readonly reserveTokens: number
  readonly keepRecentTokens: number
  readonly userTimezone: string | undefined
  readonly heartbeatPrompt: string | undefined
}
