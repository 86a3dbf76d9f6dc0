/**
 * The application's layers for commands that run turns in-process: `core`
 * is everything a turn needs (config, store, models, prompts, tools, the
 * session host). The gateway process is built in Gateway.ts, on the same
 * sessions (see `sessions`).
 */
import { Effect, Layer } from "effect"
import * as AgentDirectoryLayer from "../agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../agent/PromptBuilder.ts"
import { ToolRegistry } from "../agent/Tool.ts"
import { Paths } from "../config/Paths.ts"
import * as ModelsLayer from "../provider/ModelsLayer.ts"
import * as FileSessionStore from "../session/FileSessionStore.ts"
import { Sessions } from "../session/Sessions.ts"
import { base, type CoreOptions, loggingLayer } from "./Base.ts"
import { HeapReclaim } from "./HeapReclaim.ts"

export { base, bindHost, type CoreOptions, logToStderr } from "./Base.ts"

const storeLayer = (readOnly: boolean) => Layer.unwrap(Effect.gen(function*() {
  const paths = yield* Paths
  return FileSessionStore.layer({ home: paths.home, readOnly })
}))

/** The sessions and what they run on, over `base` and the log level; the heap is given back when they go quiet. */
export const sessions = (readOnly: boolean) =>
  HeapReclaim.layer().pipe(
    Layer.provideMerge(Sessions.layer),
    Layer.provideMerge(Layer.mergeAll(AgentDirectoryLayer.layer, ModelsLayer.layer, PromptBuilder.layer, ToolRegistry.empty, storeLayer(readOnly)))
  )

export const core = (options: CoreOptions = {}) =>
  sessions(options.readOnly ?? false).pipe(
    Layer.provideMerge(loggingLayer(options.quiet ?? false)),
    Layer.provideMerge(base(options))
  )
