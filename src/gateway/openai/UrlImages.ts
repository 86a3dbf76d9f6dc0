/**
 * Images given by http(s) URL in the message a turn answers, fetched before
 * the turn through the SSRF guard (src/platform/GuardedFetch.ts), one at a
 * time, and put in place of their URLs as data: URIs (the type from the
 * Content-Type), so the prompt builder checks them as it checks an inline
 * image. Both compatibility endpoints use it: /v1/chat/completions when its
 * `images.allowUrl` is on (off by default, as in OpenClaw), /v1/responses
 * unless it is off. Images of earlier messages are never fetched: only the
 * answered message's images go to the model.
 */
import { Effect, Result } from "effect"
import { type FetchPolicy, type FetchRefused, guardedFetch } from "../../platform/GuardedFetch.ts"
import type { ChatMessage } from "./ChatRequest.ts"
import { invalidField, type OpenAiError } from "./OpenAiError.ts"
import { activeMessageIndex } from "./Prompt.ts"

/** An image to fetch: where it sits in the body, its URL and its place in `messages`. */
export interface UrlImage {
  readonly at: string
  readonly url: string
  readonly messageIndex: number
  readonly imageIndex: number
}

/** OpenClaw's per-part limits and SSRF settings, as the config spells them (`images.*`, `files.*`, `ssrfPolicy`). */
export interface UrlSourceConfig {
  readonly maxBytes?: number | undefined
  readonly maxRedirects?: number | undefined
  readonly timeoutMs?: number | undefined
  readonly urlAllowlist?: ReadonlyArray<string> | undefined
}
export interface SsrfPolicyConfig {
  readonly dangerouslyAllowPrivateNetwork?: boolean | undefined
  readonly allowedHostnames?: ReadonlyArray<string> | undefined
}

/** OpenClaw's defaults: 3 redirects, 10 s. */
export const fetchPolicyOf = (limits: UrlSourceConfig | undefined, ssrf: SsrfPolicyConfig | undefined, defaultMaxBytes: number): FetchPolicy => ({
  maxBytes: limits?.maxBytes ?? defaultMaxBytes,
  timeoutMs: limits?.timeoutMs ?? 10_000,
  maxRedirects: limits?.maxRedirects ?? 3,
  hostnameAllowlist: limits?.urlAllowlist ?? [],
  allowPrivateNetwork: ssrf?.dangerouslyAllowPrivateNetwork === true,
  allowedHostnames: ssrf?.allowedHostnames ?? []
})

const isHttp = (url: string): boolean => /^https?:/i.test(url)

/** The http(s) images of the message the turn answers. */
export const urlImagesOf = (messages: ReadonlyArray<ChatMessage>, field: string): ReadonlyArray<UrlImage> => {
  const messageIndex = activeMessageIndex(messages)
  const message = messages[messageIndex]
  if (message === undefined || message.role !== "user") return []
  return message.imageUrls.flatMap((url, imageIndex) =>
    isHttp(url) ? [{ at: message.imageParams?.[imageIndex] ?? `${field}[${messageIndex}]`, url, messageIndex, imageIndex }] : []
  )
}

export const couldNotFetch = (at: string, url: string, error: FetchRefused): OpenAiError =>
  invalidField(at, `Invalid '${at}': could not fetch ${url}: ${error.message}.`, error.reason === "not_allowlisted" || error.reason === "private_address" ? "url_not_allowed" : "url_fetch_failed")

/**
 * `messages` with `images` fetched into data: URIs, or the 400 of the first
 * that could not be. Together they get `maxTotalBytes` (the prompt builder's
 * cap on a message's images): each download stops where the sum would pass
 * it, so a request holds at most that much, not its per-image limit times its
 * number of images.
 */
export const fetchUrlImages = Effect.fnUntraced(function*(
  messages: ReadonlyArray<ChatMessage>,
  images: ReadonlyArray<UrlImage>,
  policy: FetchPolicy,
  maxTotalBytes: number
) {
  const out = [...messages]
  let left = maxTotalBytes
  for (const image of images) {
    const fetched = yield* Effect.result(guardedFetch(image.url, { ...policy, maxBytes: Math.min(policy.maxBytes, left) }))
    if (Result.isFailure(fetched)) {
      if (fetched.failure.reason === "too_large" && left < policy.maxBytes) {
        return Result.fail(invalidField(image.at, `Invalid '${image.at}': the images add up to more than ${maxTotalBytes} bytes.`, "invalid_image"))
      }
      return Result.fail(couldNotFetch(image.at, image.url, fetched.failure))
    }
    left -= fetched.success.bytes.length
    const mime = fetched.success.contentType?.split(";")[0]?.trim().toLowerCase()
    if (mime === undefined || mime === "") {
      return Result.fail(invalidField(image.at, `Invalid '${image.at}': ${image.url} was served without a Content-Type; an image needs one.`, "invalid_image"))
    }
    const message = out[image.messageIndex]
    if (message === undefined) continue
    const imageUrls = [...message.imageUrls]
    imageUrls[image.imageIndex] = `data:${mime};base64,${fetched.success.bytes.toString("base64")}`
    out[image.messageIndex] = { ...message, imageUrls }
  }
  return Result.succeed<ReadonlyArray<ChatMessage>>(out)
})
