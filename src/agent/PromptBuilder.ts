/**
 * The system prompt of a turn from the agent's workspace: seeds the workspace
 * on first use, loads the bootstrap files with OpenClaw's order and caps, and
 * renders the prompt. A workspace that cannot be read degrades to a prompt
 * without its files, with a warning, rather than failing the turn.
 */
import * as os from "node:os"
import { Effect, FileSystem, Layer, Option, Stream } from "effect"
import type { SessionKind } from "../session/SessionKey.ts"
import type { AgentSettings } from "./AgentSettings.ts"
import type { Tool } from "./Tool.ts"
import { SystemPromptSource } from "./RunLoop.ts"
import { buildSystemPrompt } from "./SystemPrompt.ts"
import * as Workspace from "./Workspace.ts"

export const layer = Layer.effect(SystemPromptSource, Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const seeded = new Set<string>()
  // The prompt is rebuilt only when its inputs or a workspace file change:
  // a few stats per turn instead of reading every file and re-rendering.
  const cache = new Map<string, { readonly fingerprint: string; readonly prompt: string }>()
  const statFingerprint = (workspace: string) =>
    Effect.forEach(Workspace.BOOTSTRAP_FILE_ORDER, (name) =>
      fs.stat(`${workspace}/${name}`).pipe(
        Effect.map((info) => `${name}:${Option.getOrElse(info.mtime, () => new Date(0)).getTime()}:${info.size}`),
        Effect.orElseSucceed(() => `${name}:-`)
      )).pipe(Effect.map((parts) => parts.join("|")))
  // Stat'ing every file on every turn showed up in profiles, so each workspace
  // is watched instead: a fingerprint is kept until the directory reports a
  // change (or the watch ends, in which case every turn stats again).
  const fingerprints = new Map<string, string>()
  const watched = new Set<string>()
  const scope = yield* Effect.scope
  const watch = (workspace: string) =>
    Effect.suspend(() => {
      if (watched.has(workspace)) return Effect.void
      watched.add(workspace)
      return fs.watch(workspace).pipe(
        Stream.runForEach(() => Effect.sync(() => fingerprints.delete(workspace))),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => {
          watched.delete(workspace)
          fingerprints.delete(workspace)
        })),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })
  const fingerprintOf = (workspace: string) =>
    Effect.gen(function*() {
      const known = fingerprints.get(workspace)
      if (known !== undefined && watched.has(workspace)) return known
      yield* watch(workspace)
      const fresh = yield* statFingerprint(workspace)
      fingerprints.set(workspace, fresh)
      return fresh
    })
  // The settings and the tool list are usually the same objects turn after turn: their part of the key is made once.
  const settingsKeys = new WeakMap<AgentSettings, string>()
  const toolsKeys = new WeakMap<ReadonlyArray<Tool>, string>()
  const keyOf = <K extends object>(keys: WeakMap<K, string>, value: K, make: () => string) => {
    const known = keys.get(value)
    if (known !== undefined) return known
    const key = make()
    keys.set(value, key)
    return key
  }
  const build = (settings: AgentSettings, session: { readonly key: string; readonly kind: SessionKind }, tools: ReadonlyArray<Tool>) =>
    Effect.gen(function*() {
      // Both parts are JSON, which holds no NUL: the separator keeps the key unambiguous.
      const inputs = `${keyOf(settingsKeys, settings, () => JSON.stringify(settings))}\u0000${session.kind}\u0000${
        keyOf(toolsKeys, tools, () => JSON.stringify(tools.map((tool) => [tool.name, tool.summary])))
      }`
      const fingerprint = yield* fingerprintOf(settings.workspace)
      const cached = cache.get(inputs)
      if (cached !== undefined && cached.fingerprint === fingerprint) return cached.prompt
      const prompt = yield* render(settings, session, tools)
      // Re-read the fingerprint: a first turn may have just seeded the workspace.
      fingerprints.delete(settings.workspace)
      cache.set(inputs, { fingerprint: yield* fingerprintOf(settings.workspace), prompt })
      return prompt
    })
  const render = (settings: AgentSettings, session: { readonly key: string; readonly kind: SessionKind }, tools: ReadonlyArray<Tool>) =>
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
  return SystemPromptSource.of({ build })
}))
