/**
 * The Models service: every configured provider behind one call that takes a
 * chain of `provider/model` ids and handles retries and failover.
 */
import { Context, type Stream } from "effect"
import type { ProviderError, ProviderEvent, ProviderRequest } from "./Provider.ts"

export type ModelEvent =
  | ProviderEvent
  | { readonly _tag: "Failover"; readonly from: string; readonly to: string; readonly reason: string }

export class Models extends Context.Service<Models, {
  readonly stream: (chain: ReadonlyArray<string>, request: Omit<ProviderRequest, "model">) => Stream.Stream<ModelEvent, ProviderError>
  /** The context window of a `provider/model` id, when the config knows it. */
  readonly contextWindow: (modelId: string) => number | undefined
}>()("beamclaw/provider/Models") {}
