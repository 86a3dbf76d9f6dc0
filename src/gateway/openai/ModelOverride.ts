/**
 * The `x-openclaw-model` / `x-beamclaw-model` header: a backend model for one
 * turn of the selected agent, instead of its configured one. OpenClaw lets a
 * shared-secret bearer caller (every HTTP caller here) send it directly. The
 * model is checked against the same catalog `/new <model>` and sessions.patch
 * use: aliases and the allowlist of `agents.defaults.models`, and otherwise
 * any model of a known provider. A model that cannot be used is a 400 naming
 * the header, before any turn starts, rather than a failed model call later.
 */
import { Effect, Result } from "effect"
import type { Headers } from "effect/http"
import { type ModelCatalog, modelCatalogOf } from "../../channels/ChatCommands.ts"
import { AppConfig } from "../../config/AppConfig.ts"
import { openAiError, type OpenAiError } from "./OpenAiError.ts"

export const MODEL_HEADERS = ["x-beamclaw-model", "x-openclaw-model"] as const

/** The header's value and the name it came under (ours wins when both are sent); undefined when neither is set. */
export const modelHeader = (headers: Headers.Headers): { readonly name: string; readonly value: string } | undefined => {
  for (const name of MODEL_HEADERS) {
    const value = headers[name]
    if (value !== undefined && value.trim() !== "") return { name, value: value.trim() }
  }
  return undefined
}

const providerOf = (ref: string): string => ref.slice(0, Math.max(0, ref.indexOf("/"))).toLowerCase()
const modelPart = (ref: string): string => ref.slice(ref.indexOf("/") + 1)

const list = (models: ReadonlyArray<string>): string => models.length === 0 ? "(none)" : models.join(", ")

/**
 * The `provider/model` id the header names: an alias, a `provider/model` id,
 * or a bare model id (a configured model with that id, the agent's own first;
 * else, without an allowlist, that id at the provider of the agent's primary
 * model, as OpenClaw reads a bare id with its default provider).
 */
export const resolveModelOverride = (
  value: string,
  headerName: string,
  catalog: ModelCatalog
): Result.Result<string, OpenAiError> => {
  const refuse = (message: string, code: string) => Result.fail(openAiError(400, `Invalid ${headerName} header: ${message}`, { param: headerName, code }))
  const requested = value.trim()
  const aliased = catalog.aliases.get(requested.toLowerCase())
  if (aliased !== undefined) return Result.succeed(aliased)
  const known = catalog.models.find((ref) => ref.toLowerCase() === requested.toLowerCase())
  if (known !== undefined) return Result.succeed(known)
  const slash = requested.indexOf("/")
  if (slash === 0 || slash === requested.length - 1) {
    return refuse(`${JSON.stringify(requested)} is not a model; use provider/model (e.g. anthropic/claude-sonnet-4-5), a model id or a model alias.`, "invalid_model")
  }
  if (catalog.restricted) {
    if (slash < 0) {
      const byId = catalog.models.find((ref) => modelPart(ref).toLowerCase() === requested.toLowerCase())
      if (byId !== undefined) return Result.succeed(byId)
    }
    return refuse(`model not allowed: ${JSON.stringify(requested)} (allowed: ${list(catalog.models)}).`, "model_not_allowed")
  }
  if (slash > 0) {
    const provider = providerOf(requested)
    if (!catalog.providers.has(provider)) {
      return refuse(`unknown provider ${JSON.stringify(provider)} in ${JSON.stringify(requested)} (known providers: ${list([...catalog.providers])}).`, "model_not_found")
    }
    return Result.succeed(`${provider}/${modelPart(requested)}`)
  }
  const byId = catalog.models.find((ref) => modelPart(ref).toLowerCase() === requested.toLowerCase())
  if (byId !== undefined) return Result.succeed(byId)
  const primary = catalog.models[0]
  if (primary === undefined || providerOf(primary) === "") {
    return refuse(`${JSON.stringify(requested)} names no provider and the agent has no model to take one from; use provider/model.`, "invalid_model")
  }
  return Result.succeed(`${providerOf(primary)}/${requested}`)
}

/** The request's model override for a turn of `agentId`: undefined without the header, a 400 when it cannot be used. */
export const requestModelOverride = (headers: Headers.Headers, agentId: string) =>
  Effect.gen(function*() {
    const sent = modelHeader(headers)
    if (sent === undefined) return Result.succeed<string | undefined>(undefined)
    const config = yield* (yield* AppConfig).get
    return resolveModelOverride(sent.value, sent.name, modelCatalogOf(config, agentId))
  })
