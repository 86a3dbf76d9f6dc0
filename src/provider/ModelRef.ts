/**
 * `provider/model` references, as written in config (`anthropic/claude-sonnet-4-5`,
 * `ollama/llama3.1:8b`, `openrouter/meta-llama/llama-3-70b`).
 */
import { Result } from "effect"

export interface ModelRef {
  /** The configured provider id, lower-cased. */
  readonly provider: string
  /** The model id as the provider knows it; may itself contain `/`. */
  readonly model: string
}

/**
 * Splits on the first `/` only, because model ids of aggregators
 * (OpenRouter, vLLM served paths) contain slashes themselves.
 */
export const parseModelRef = (input: string): Result.Result<ModelRef, string> => {
  const text = input.trim()
  const slash = text.indexOf("/")
  if (slash < 0) {
    return Result.fail(`Invalid model reference "${input}": expected "provider/model", e.g. "anthropic/claude-sonnet-4-5"`)
  }
  const provider = text.slice(0, slash).trim().toLowerCase()
  const model = text.slice(slash + 1).trim()
  if (provider.length === 0) {
    return Result.fail(`Invalid model reference "${input}": the provider part before "/" is empty`)
  }
  if (model.length === 0) {
    return Result.fail(`Invalid model reference "${input}": the model part after "/" is empty`)
  }
  return Result.succeed({ provider, model })
}

export const formatModelRef = (ref: ModelRef): string => `${ref.provider}/${ref.model}`
