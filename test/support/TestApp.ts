/**
 * The real core layers (config, file store, Anthropic provider, prompts,
 * session host) over a temp state dir, with the provider pointed at a fake
 * server and a chosen set of tools. Only the remote service is faked.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import * as AgentDirectoryLayer from "../../src/agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../../src/agent/PromptBuilder.ts"
import { type Tool, ToolRegistry } from "../../src/agent/Tool.ts"
import { AppConfig } from "../../src/config/AppConfig.ts"
import { BeamclawConfig } from "../../src/config/ConfigSchema.ts"
import { Paths } from "../../src/config/Paths.ts"
import * as ModelsLayer from "../../src/provider/ModelsLayer.ts"
import * as FileSessionStore from "../../src/session/FileSessionStore.ts"
import { Sessions } from "../../src/session/Sessions.ts"

export const tempDir = (prefix = "beamclaw-test-") =>
  Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )

export interface TestAppOptions {
  readonly home: string
  readonly anthropicUrl: string
  readonly tools?: ReadonlyArray<Tool>
  /** Encoded config merged over the test defaults (as it would be written in the file). */
  readonly config?: Record<string, unknown>
}

const decodeConfig = Schema.decodeUnknownSync(BeamclawConfig)

export const testConfig = (options: TestAppOptions): BeamclawConfig => {
  const overrides = options.config ?? {}
  const agents = (overrides["agents"] ?? {}) as Record<string, unknown>
  const defaults = (agents["defaults"] ?? {}) as Record<string, unknown>
  const session = (overrides["session"] ?? {}) as Record<string, unknown>
  const models = (overrides["models"] ?? {}) as Record<string, unknown>
  const providers = (models["providers"] ?? {}) as Record<string, unknown>
  return decodeConfig({
    ...overrides,
    models: { providers: { anthropic: { baseUrl: options.anthropicUrl, apiKey: "sk-test" }, ...providers } },
    agents: { ...agents, defaults: { workspace: path.join(options.home, "workspace"), timeoutSeconds: 20, ...defaults } },
    session: { supervisor: { backoffMs: 10, ...(session["supervisor"] as object ?? {}) }, ...session }
  })
}

export const layer = (options: TestAppOptions) =>
  Sessions.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(
      AgentDirectoryLayer.layer,
      ModelsLayer.layer,
      PromptBuilder.layer,
      ToolRegistry.layer(options.tools ?? []),
      FileSessionStore.layer({ home: options.home })
    )),
    Layer.provideMerge(AppConfig.layerFromValue(testConfig(options))),
    Layer.provideMerge(Paths.layerFrom({ home: options.home })),
    Layer.provideMerge(NodeServices.layer)
  )
