/**
 * How a client-supplied conversation becomes one agent turn, as OpenClaw's
 * buildAgentPrompt does: system and developer texts become extra system
 * instructions; the last user or tool message is the current message; the
 * messages before it are rendered as labelled history around it. Images are
 * taken from the latest user message only.
 */
import { Result } from "effect"
import type { ImagePart } from "../../agent/Message.ts"
import type { ChatMessage } from "./ChatRequest.ts"
import { openAiError, type OpenAiError } from "./OpenAiError.ts"

export const HISTORY_CONTEXT_MARKER = "[Chat messages since your last reply - for context]"
export const CURRENT_MESSAGE_MARKER = "[Current message - respond to this]"
export const IMAGE_ONLY_USER_MESSAGE = "User sent image(s) with no text."

export interface ImageLimits {
  readonly maxParts: number
  readonly maxTotalBytes: number
  readonly maxBytesPerImage: number
  readonly allowedMimes: ReadonlySet<string>
}

/** OpenClaw's built-in limits: 8 parts from the latest user message, 20 MB in all, 10 MB each, data: URIs only. */
export const defaultImageLimits: ImageLimits = {
  maxParts: 8,
  maxTotalBytes: 20 * 1024 * 1024,
  maxBytesPerImage: 10 * 1024 * 1024,
  // HEIC/HEIF would need a converter before any provider accepts them.
  allowedMimes: new Set(["image/jpeg", "image/png", "image/gif", "image/webp"])
}

/** The caps with an endpoint's `images.maxBytes` and `images.allowedMimes` where set (only types that can be delivered). */
export const imageLimitsOf = (images: { readonly maxBytes?: number | undefined; readonly allowedMimes?: ReadonlyArray<string> | undefined } | undefined): ImageLimits => {
  const mimes = images?.allowedMimes
  return {
    ...defaultImageLimits,
    maxBytesPerImage: images?.maxBytes ?? defaultImageLimits.maxBytesPerImage,
    allowedMimes: mimes === undefined
      ? defaultImageLimits.allowedMimes
      : new Set(mimes.map((mime) => mime.trim().toLowerCase()).filter((mime) => defaultImageLimits.allowedMimes.has(mime)))
  }
}

export interface AgentPrompt {
  readonly message: string
  readonly extraSystemPrompt: string | undefined
  readonly images: ReadonlyArray<ImagePart>
}

interface Entry {
  readonly role: "user" | "assistant" | "tool"
  readonly sender: string
  readonly body: string
}

const renderToolCalls = (message: ChatMessage): string =>
  message.toolCalls.map((call) => `[called ${call.name}(${call.arguments})]`).join("\n")

const base64Bytes = (data: string): number => {
  const clean = data.replace(/\s+/g, "")
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0
  return Math.floor(clean.length * 3 / 4) - padding
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

const decodeImage = (url: string, index: number, limits: ImageLimits): ImagePart | string => {
  const match = /^data:([^,]*?),(.*)$/is.exec(url)
  if (match === null) {
    return url.startsWith("http:") || url.startsWith("https:")
      ? `image ${index + 1}: an image by URL that was not fetched; send the image inline as a base64 data: URI`
      : `image ${index + 1}: expected a data: URI`
  }
  const meta = (match[1] ?? "").split(";").map((part) => part.trim().toLowerCase()).filter((part) => part !== "")
  if (!meta.includes("base64")) return `image ${index + 1}: the data: URI must be base64 encoded`
  const mimeType = meta.find((part) => part.includes("/"))
  if (mimeType === undefined || !limits.allowedMimes.has(mimeType)) {
    return `image ${index + 1}: type ${mimeType ?? "(none)"} is not allowed; use one of ${[...limits.allowedMimes].join(", ")}`
  }
  const data = (match[2] ?? "").replace(/\s+/g, "")
  if (data === "") return `image ${index + 1}: the data: URI has no data`
  if (!BASE64.test(data)) return `image ${index + 1}: the data is not valid base64`
  if (base64Bytes(data) > limits.maxBytesPerImage) return `image ${index + 1}: ${base64Bytes(data)} bytes is over the ${limits.maxBytesPerImage}-byte limit per image`
  return { type: "image", data, mimeType }
}

/** How errors name the request field and the image part type: chat completions' by default, `input`/`input_image` for /v1/responses. */
export interface PromptLabels {
  readonly field: string
  readonly imagePart: string
}

const chatLabels: PromptLabels = { field: "messages", imagePart: "image_url" }

const invalidImages = (reason: string, labels: PromptLabels): OpenAiError =>
  openAiError(400, `Invalid ${labels.imagePart} content in \`${labels.field}\`: ${reason}.`, { param: labels.field, code: "invalid_image" })

/** The message the turn answers: the last user or tool message (-1 when there is none); only its images are sent. */
export const activeMessageIndex = (messages: ReadonlyArray<ChatMessage>): number => {
  for (let i = messages.length - 1; i >= 0; i--) {
    const role = messages[i]?.role
    if (role === "user" || role === "tool") return i
  }
  return -1
}

export const buildAgentPrompt = (
  messages: ReadonlyArray<ChatMessage>,
  limits: ImageLimits = defaultImageLimits,
  labels: PromptLabels = chatLabels
): Result.Result<AgentPrompt, OpenAiError> => {
  const activeIndex = activeMessageIndex(messages)
  const active = messages[activeIndex]
  const imageUrls = active?.role === "user" ? active.imageUrls : []

  if (imageUrls.length > limits.maxParts) {
    return Result.fail(invalidImages(`${imageUrls.length} ${labels.imagePart} parts in the latest user message; the limit is ${limits.maxParts}`, labels))
  }
  const images: Array<ImagePart> = []
  let total = 0
  for (const [index, url] of imageUrls.entries()) {
    const image = decodeImage(url, index, limits)
    if (typeof image === "string") return Result.fail(invalidImages(image, labels))
    total += base64Bytes(image.data)
    if (total > limits.maxTotalBytes) return Result.fail(invalidImages(`the images add up to more than ${limits.maxTotalBytes} bytes`, labels))
    images.push(image)
  }

  const system: Array<string> = []
  const entries: Array<Entry> = []
  let currentEntry = -1
  messages.forEach((message, i) => {
    if (message.role === "system" || message.role === "developer") {
      if (message.text.trim() !== "") system.push(message.text.trim())
      return
    }
    let body = message.text.trim()
    if (message.role === "assistant" && message.toolCalls.length > 0) body = [body, renderToolCalls(message)].filter((s) => s !== "").join("\n")
    if (message.role === "user" && body === "" && i === activeIndex && images.length > 0) body = IMAGE_ONLY_USER_MESSAGE
    // An empty tool result still completes its call, so it is kept.
    if (message.role === "tool" && body === "") body = "(no output)"
    if (body === "") return
    const sender = message.role === "assistant" ? "Assistant" : message.role === "user" ? "User" : message.name !== undefined ? `Tool:${message.name}` : "Tool"
    if (i === activeIndex) currentEntry = entries.length
    entries.push({ role: message.role, sender, body })
  })

  if (currentEntry < 0) {
    // No user or tool message had text: OpenClaw falls back to the last entry.
    if (entries.length === 0) return Result.fail(openAiError(400, `Missing user message in \`${labels.field}\`.`, { param: labels.field, code: "missing_user_message" }))
    currentEntry = entries.length - 1
  }
  const current = entries[currentEntry]
  const history = entries.slice(0, currentEntry)
  const format = (entry: Entry) => `${entry.sender}: ${entry.body}`
  const message = current === undefined
    ? ""
    : history.length === 0
    ? current.body
    : [HISTORY_CONTEXT_MARKER, history.map(format).join("\n"), "", CURRENT_MESSAGE_MARKER, format(current)].join("\n")
  return Result.succeed({ message, extraSystemPrompt: system.length > 0 ? system.join("\n\n") : undefined, images })
}
