/**
 * The Models service built from the config: the built-in `anthropic` provider
 * (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL) and every `models.providers` entry.
 * Providers are rebuilt when `models` changes, so a key rotation or a new
 * provider applies to the next model call without a restart.
 */
import { Config, Effect, Layer, Option, Redacted, Result, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import { configEquals } from "../config/ConfigLoader.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { makeAnthropicProvider } from "./Anthropic.ts"
import { makeModelRouter, type ModelRouter } from "./ModelRouter.ts"
import { type ModelRef, parseModelRef } from "./ModelRef.ts"
import { Models } from "./Models.ts"
import { makeOpenAiCompatProvider } from "./OpenAiCompat.ts"
import { type Provider, ProviderError } from "./Provider.ts"

export interface ProviderEnv {
  readonly anthropicApiKey: Redacted.Redacted<string> | undefined
  readonly anthropicBaseUrl: string | undefined
  readonly openaiApiKey: Redacted.Redacted<string> | undefined
}

/** Header values are secrets in the config; the provider sends them as they are. */
const revealHeaders = (headers: Readonly<Record<string, Redacted.Redacted<string>>>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Redacted.value(value)]))

export const buildProviders = (models: BeamclawConfig["models"], env: ProviderEnv): ReadonlyMap<string, Provider> => {
  const providers = new Map<string, Provider>()
  providers.set("anthropic", makeAnthropicProvider({ id: "anthropic", apiKey: env.anthropicApiKey, baseUrl: env.anthropicBaseUrl }))
  providers.set("openai", makeOpenAiCompatProvider({ id: "openai", apiKey: env.openaiApiKey, baseUrl: "https://api.openai.com/v1" }))
  for (const [id, entry] of Object.entries(models.providers)) {
    const key = id.toLowerCase()
    const provider = entry.api === "openai-completions"
      ? makeOpenAiCompatProvider({ id: key, apiKey: entry.apiKey ?? (key === "openai" ? env.openaiApiKey : undefined), baseUrl: entry.baseUrl, headers: revealHeaders(entry.headers) })
      : makeAnthropicProvider({ id: key, apiKey: entry.apiKey ?? (key === "anthropic" ? env.anthropicApiKey : undefined), baseUrl: entry.baseUrl, headers: revealHeaders(entry.headers) })
    providers.set(key, provider)
  }
  return providers
}

const optionalEnv = (name: string) => Config.option(Config.String(name)).pipe(Config.map(Option.getOrUndefined))

export const layer = Layer.effect(Models, Effect.gen(function*() {
  const config = yield* AppConfig
  const env: ProviderEnv = {
    anthropicApiKey: yield* optionalEnv("ANTHROPIC_API_KEY").pipe(Config.map((key) => key === undefined || key === "" ? undefined : Redacted.make(key))),
    anthropicBaseUrl: yield* optionalEnv("ANTHROPIC_BASE_URL").pipe(Config.map((url) => url === "" ? undefined : url)),
    openaiApiKey: yield* optionalEnv("OPENAI_API_KEY").pipe(Config.map((key) => key === undefined || key === "" ? undefined : Redacted.make(key)))
  }
  let built: { readonly models: BeamclawConfig["models"]; readonly router: ModelRouter } | undefined
  const routerFor = (models: BeamclawConfig["models"]) => {
    // Every reload decodes a new object; only a change of meaning rebuilds the providers.
    if (built === undefined || (built.models !== models && !configEquals(built.models, models))) {
      built = { models, router: makeModelRouter({ providers: buildProviders(models, env) }) }
    }
    return built.router
  }
  const windows = (current: BeamclawConfig) => {
    const map = new Map<string, number>()
    for (const [id, entry] of Object.entries(current.models.providers)) {
      for (const model of entry.models) if (model.contextWindow !== undefined) map.set(`${id.toLowerCase()}/${model.id}`, model.contextWindow)
    }
    return map
  }
  let latest = yield* config.get
  yield* config.changes.pipe(Stream.runForEach((next) => Effect.sync(() => { latest = next })), Effect.forkScoped)

  return Models.of({
    stream: (chain, request) =>
      Stream.unwrap(Effect.gen(function*() {
        const refs: Array<ModelRef> = []
        for (const id of chain) {
          const parsed = parseModelRef(id)
          if (Result.isFailure(parsed)) {
            return yield* new ProviderError({ provider: "", model: id, reason: "BadRequest", message: `model id ${JSON.stringify(id)} is not provider/model: ${parsed.failure}` })
          }
          refs.push(parsed.success)
        }
        return routerFor(latest.models).stream(refs, request)
      })),
    contextWindow: (modelId) => windows(latest).get(modelId)
  })
}))
