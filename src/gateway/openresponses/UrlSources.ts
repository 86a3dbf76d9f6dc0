/**
 * The URL parts of a /v1/responses request, fetched before its turn starts,
 * as OpenClaw does: the input_image parts of the message the turn answers and
 * the input_file parts of the last user message. One at a time, through the
 * SSRF guard (src/platform/GuardedFetch.ts), under the endpoint's
 * `images.*` and `files.*` limits (`allowUrl`, `urlAllowlist`, `maxBytes`,
 * `maxRedirects`, `timeoutMs`), at most `maxUrlParts` of them. A client that
 * goes away interrupts the request fiber, which aborts the download in
 * flight; none is started after it.
 *
 * A part that cannot be fetched is a 400 naming it and saying why. What was
 * fetched takes the place of the URL: an image becomes a data: URI (its type
 * from the Content-Type, checked by the prompt builder as an inline image
 * is), a file its bytes with the Content-Type as its declared type and the
 * URL's last path segment as its name when it has none.
 */
import { Effect, Result } from "effect"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import { guardedFetch } from "../../platform/GuardedFetch.ts"
import { invalidField } from "../openai/OpenAiError.ts"
import { imageLimitsOf } from "../openai/Prompt.ts"
import { couldNotFetch, fetchPolicyOf, fetchUrlImages, urlImagesOf } from "../openai/UrlImages.ts"
import type { InputFile } from "./InputFiles.ts"
import type { ResponsesRequest } from "./ResponsesRequest.ts"

type EndpointConfig = BeamclawConfig["gateway"]["http"]["endpoints"]["responses"]

/** OpenClaw's defaults. */
export const DEFAULT_MAX_URL_PARTS = 8
const DEFAULT_IMAGE_MAX_BYTES = 10 * 1024 * 1024
const DEFAULT_FILE_MAX_BYTES = 5 * 1024 * 1024

const CONFIG = "gateway.http.endpoints.responses"

/** The last segment of the URL's path, as a file name. */
const nameFrom = (url: URL): string | undefined => {
  const last = url.pathname.split("/").at(-1) ?? ""
  if (last === "") return undefined
  try {
    return decodeURIComponent(last)
  } catch {
    return last
  }
}

/** The request with its URL parts fetched, or the 400 of the first that could not be. */
export const fetchUrlParts = Effect.fnUntraced(function*(request: ResponsesRequest, endpoint: EndpointConfig) {
  const images = urlImagesOf(request.messages, "input")
  const files = request.files.filter((file) => file.content._tag === "Url")
  if (images.length === 0 && files.length === 0) return Result.succeed(request)

  const maxUrlParts = endpoint.maxUrlParts ?? DEFAULT_MAX_URL_PARTS
  if (images.length + files.length > maxUrlParts) {
    return Result.fail(invalidField("input", `Invalid 'input': ${images.length + files.length} input_image and input_file parts by URL; the limit is ${maxUrlParts} (${CONFIG}.maxUrlParts).`, "too_many_url_parts"))
  }
  const imagesOff = images.length > 0 && endpoint.images?.allowUrl === false ? images[0] : undefined
  if (imagesOff !== undefined) {
    return Result.fail(invalidField(imagesOff.at, `Invalid '${imagesOff.at}': images by URL are turned off (${CONFIG}.images.allowUrl); send the image inline as base64.`, "url_not_allowed"))
  }
  const filesOff = files.length > 0 && endpoint.files?.allowUrl === false ? files[0] : undefined
  if (filesOff !== undefined) {
    return Result.fail(invalidField(filesOff.at, `Invalid '${filesOff.at}': files by URL are turned off (${CONFIG}.files.allowUrl); send the file inline as base64.`, "url_not_allowed"))
  }

  const imagePolicy = fetchPolicyOf(endpoint.images, endpoint.ssrfPolicy, DEFAULT_IMAGE_MAX_BYTES)
  const messages = yield* fetchUrlImages(request.messages, images, imagePolicy, imageLimitsOf(endpoint.images).maxTotalBytes)
  if (Result.isFailure(messages)) return Result.fail(messages.failure)

  const filePolicy = fetchPolicyOf(endpoint.files, endpoint.ssrfPolicy, DEFAULT_FILE_MAX_BYTES)
  const resolved: Array<InputFile> = []
  for (const file of request.files) {
    if (file.content._tag !== "Url") {
      resolved.push(file)
      continue
    }
    const url = file.content.url
    const fetched = yield* Effect.result(guardedFetch(url, filePolicy))
    if (Result.isFailure(fetched)) return Result.fail(couldNotFetch(file.at, url, fetched.failure))
    resolved.push({
      at: file.at,
      filename: file.filename ?? nameFrom(fetched.success.url),
      mediaType: fetched.success.contentType,
      content: { _tag: "Bytes", bytes: fetched.success.bytes }
    })
  }
  return Result.succeed<ResponsesRequest>({ ...request, messages: messages.success, files: resolved })
})
