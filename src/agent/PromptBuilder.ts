/**
 * The system prompt of a turn from the agent's workspace: seeds the workspace
 * on first use, loads the bootstrap files with OpenClaw's order and caps, and
 * renders the prompt. A workspace that cannot be read degrades to a prompt
 * without its files, with a warning, rather than failing the turn.
 */
import * as os from "node:os"
import { Effect, FileSystem, Layer } from "effect"
import { SystemPromptSource } from "./RunLoop.ts"
import { buildSystemPrompt } from "./SystemPrompt.ts"
import * as Workspace from "./Workspace.ts"

export const layer = Layer.effect(SystemPromptSource, Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const seeded = new Set<string>()
  return SystemPromptSource.of({
    build: (settings, session, tools) =>
      Effect.gen(function*() {
        if (!seeded.has(settings.workspace)) {
          yield* Workspace.ensureWorkspace(settings.workspace, { skipBootstrap: settings.skipBootstrap })
          seeded.add(settings.workspace)
        }
        const files = yield* Workspace.loadBootstrapFiles(settings.workspace, {
          sessionKind: session.kind,
          maxChars: settings.bootstrapMaxChars,
          totalMaxChars: settings.bootstrapTotalMaxChars
        })
        return files
      }).pipe(
        Effect.catchTag("WorkspaceError", (error) =>
          Effect.logWarning(`workspace ${settings.workspace} could not be read, answering without its files: ${error.message}`).pipe(Effect.as([]))),
        Effect.map((files) =>
          buildSystemPrompt({
            mode: session.kind === "subagent" ? "minimal" : "full",
            tools: tools.map((tool) => ({ name: tool.name, summary: tool.summary })),
            workspaceDir: settings.workspace,
            userTimezone: settings.userTimezone,
            contextFiles: files,
            heartbeatPrompt: settings.heartbeatPrompt,
            runtime: {
              agentId: settings.agentId,
              host: os.hostname(),
              os: os.platform(),
              arch: os.arch(),
              node: process.version,
              model: settings.modelChain[0] ?? "",
              thinking: settings.thinking
            }
          })
        ),
        Effect.provideService(FileSystem.FileSystem, fs)
      )
  })
}))
