/**
 * Splits a reply into Discord messages, as OpenClaw's Discord chunker:
 * at most 2000 characters each, a soft cap of 17 lines (taller messages are
 * clipped in Discord's UI), and never a broken code fence: a fence open at a
 * split is closed at the end of the message and reopened, with its language,
 * at the start of the next.
 *
 * Lengths are UTF-16 code units (JavaScript's `length`), which is never less
 * than what Discord counts, so a chunk within the limit here is within it
 * there. A split never falls inside a surrogate pair.
 */

export const DISCORD_TEXT_LIMIT = 2000
export const DISCORD_MAX_LINES = 17

export interface ChunkOptions {
  /** Hard limit per message, in UTF-16 code units (default 2000). */
  readonly maxChars?: number | undefined
  /** Soft limit of lines per message (default 17): exceeded only when one line of content would not fit otherwise. */
  readonly maxLines?: number | undefined
}

/** One outgoing message and how it was made, so callers (and tests) can tell source text from added fence lines. */
export interface ChunkPart {
  /** The message to send. */
  readonly text: string
  /** The fence line added at the start to reopen a fence left open by the previous message. */
  readonly reopened: string | undefined
  /** The fence marker added at the end to close a fence still open. */
  readonly closed: string | undefined
  /** `text` without the added lines: a consecutive piece of the source. */
  readonly content: string
  /** How `content` follows the previous part's content in the source: at a line break, or inside a split line. */
  readonly joinedWith: "\n" | ""
}

interface Fence {
  readonly indent: string
  readonly char: string
  readonly length: number
  readonly line: string
}

const FENCE_LINE = /^( {0,3})(`{3,}|~{3,})([\s\S]*)$/
// Where a split line's remainder would begin: a remainder that reads as a fence would change the rendering.
const FENCE_AHEAD = / {0,3}(?:`{3}|~{3})/y
const CJK_BREAK = new Set(["、", "。", "，", "．", "！", "？", "；", "：", "）", "…"])
const WHITESPACE = /\s/

const parseFence = (line: string): Fence | undefined => {
  const match = FENCE_LINE.exec(line)
  if (match === null) return undefined
  const indent = match[1] ?? ""
  const marker = match[2] ?? "```"
  return { indent, char: marker[0] ?? "`", length: marker.length, line }
}

const closerOf = (fence: Fence): string => `${fence.indent}${fence.char.repeat(fence.length)}`

/** The fence state after a line: a fence line opens one, or closes the open one when it has the same character and is at least as long. */
const afterLine = (open: Fence | undefined, line: string): Fence | undefined => {
  const fence = parseFence(line)
  if (fence === undefined) return open
  if (open === undefined) return fence
  return fence.char === open.char && fence.length >= open.length ? undefined : open
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff

/** `index` moved back off the middle of a surrogate pair. */
const codePointBoundary = (text: string, index: number): number =>
  index > 0 && index < text.length && isHighSurrogate(text.charCodeAt(index - 1)) && isLowSurrogate(text.charCodeAt(index))
    ? index - 1
    : index

/** A cut at most `limit` units in, on a code-point boundary; at least one code point so the loop always advances. */
const hardCut = (text: string, limit: number): number => {
  const cut = codePointBoundary(text, Math.min(limit, text.length))
  if (cut > 0) return cut
  return text.length > 1 && isHighSurrogate(text.charCodeAt(0)) && isLowSurrogate(text.charCodeAt(1)) ? 2 : 1
}

/** Outside a fence: before the last whitespace that keeps the first part within `limit` (the whitespace goes with the rest). */
const whitespaceCut = (text: string, limit: number): number => {
  for (let index = Math.min(limit, text.length - 1); index >= 1; index--) {
    if (WHITESPACE.test(text[index] ?? "")) return index
  }
  return 0
}

/** After the last CJK sentence punctuation within `limit`. */
const cjkCut = (text: string, limit: number): number => {
  for (let index = Math.min(limit, text.length) - 1; index >= 0; index--) {
    if (CJK_BREAK.has(text[index] ?? "")) return index + 1
  }
  return 0
}

/**
 * A cut moved back a little when the remainder would start with a fence
 * marker (the remainder begins a line in the next message, where it would
 * open or close a fence that the source never had there).
 */
const avoidFenceAhead = (text: string, cut: number): number => {
  const startsFence = (at: number) => {
    FENCE_AHEAD.lastIndex = at
    return FENCE_AHEAD.test(text)
  }
  if (!startsFence(cut)) return cut
  for (let at = cut - 1; at >= Math.max(1, cut - 64); at--) {
    const boundary = codePointBoundary(text, at)
    if (boundary >= 1 && !startsFence(boundary)) return boundary
  }
  return cut
}

const countLines = (text: string): number => {
  let lines = 1
  for (let index = text.indexOf("\n"); index !== -1; index = text.indexOf("\n", index + 1)) lines++
  return lines
}

const positiveInt = (value: number | undefined, fallback: number): number =>
  value === undefined || !Number.isFinite(value) ? fallback : Math.max(1, Math.floor(value))

/** `chunkDiscordText`, with each message's added fence lines told apart from the source text. */
export const chunkDiscordTextDetailed = (text: string, options?: ChunkOptions): ReadonlyArray<ChunkPart> => {
  const maxChars = positiveInt(options?.maxChars, DISCORD_TEXT_LIMIT)
  const maxLines = positiveInt(options?.maxLines, DISCORD_MAX_LINES)
  if (text.trim() === "") return []
  if (text.length <= maxChars && countLines(text) <= maxLines) {
    return [{ text, reopened: undefined, closed: undefined, content: text, joinedWith: "" }]
  }

  /**
   * A fence is carried across messages only when a message can hold its
   * bare marker, one code point and its closer; below that (tiny limits,
   * absurdly long markers) it is passed through as text.
   */
  const carried = (fence: Fence | undefined): fence is Fence =>
    fence !== undefined && 2 * closerOf(fence).length + 4 <= maxChars
  /** The full opening line (with its language) when the fence lines take at most half a message, else the bare marker. */
  const reopenLine = (fence: Fence): string =>
    fence.line.length + closerOf(fence).length + 2 <= Math.floor(maxChars / 2) ? fence.line : closerOf(fence)
  const reserveFor = (fence: Fence | undefined): number => carried(fence) ? closerOf(fence).length + 1 : 0

  const parts: Array<ChunkPart> = []
  // The fence open at the end of the output so far, as a reader of the current message sees it.
  let open: Fence | undefined
  let lines: Array<string> = []
  let length = 0
  let contentLines = 0
  let reopened: string | undefined
  let joinedWith: "\n" | "" = ""

  const push = (line: string) => {
    length += (lines.length > 0 ? 1 : 0) + line.length
    lines.push(line)
  }

  const flush = (nextJoin: "\n" | "") => {
    if (contentLines > 0) {
      const content = (reopened === undefined ? lines : lines.slice(1)).join("\n")
      if (content.trim() !== "") {
        const closed = carried(open) ? closerOf(open) : undefined
        parts.push({ text: closed === undefined ? lines.join("\n") : `${lines.join("\n")}\n${closed}`, reopened, closed, content, joinedWith })
      }
    } else if (lines.length > 0) {
      return // only a reopened fence so far: keep filling this message
    }
    lines = []
    length = 0
    contentLines = 0
    reopened = undefined
    joinedWith = nextJoin
    if (carried(open)) {
      reopened = reopenLine(open)
      push(reopened)
    }
  }

  /** Adds `piece` as a new line of the current message if it fits (the soft line cap yields to an empty message). */
  const tryPlace = (piece: string): boolean => {
    const after = afterLine(open, piece)
    const chars = length + (lines.length > 0 ? 1 : 0) + piece.length + reserveFor(after)
    const lineCount = lines.length + 1 + (carried(after) ? 1 : 0)
    if (chars > maxChars || (lineCount > maxLines && contentLines > 0)) return false
    push(piece)
    contentLines++
    open = after
    return true
  }

  const sourceLines = text.split("\n")
  for (let index = 0; index < sourceLines.length; index++) {
    const line = sourceLines[index] ?? ""
    if (tryPlace(line)) continue
    if (contentLines > 0) {
      flush("\n")
      if (tryPlace(line)) continue
    }
    // Longer than a whole message: split it, one message per piece.
    let rest = line
    while (!tryPlace(rest)) {
      const insideFence = open !== undefined
      const reserve = Math.max(reserveFor(open), reserveFor(afterLine(open, rest)))
      const room = Math.max(1, maxChars - length - (lines.length > 0 ? 1 : 0) - reserve)
      let cut = insideFence ? 0 : whitespaceCut(rest, room) || cjkCut(rest, room)
      if (cut === 0) cut = hardCut(rest, room)
      cut = avoidFenceAhead(rest, cut)
      const piece = rest.slice(0, cut)
      push(piece)
      contentLines++
      open = afterLine(open, piece)
      rest = rest.slice(cut)
      if (rest === "") break
      flush("")
    }
  }
  flush("")
  return hoistTrailingOpeners(parts)
}

/**
 * A message that ends with the line opening a fence would show an empty code
 * block, and the next message reopens that very line anyway: the opener is
 * dropped from the first (with its added closer) and counted as source text
 * of the second. A message left with nothing visible is not sent.
 */
const hoistTrailingOpeners = (parts: ReadonlyArray<ChunkPart>): ReadonlyArray<ChunkPart> => {
  const out: Array<ChunkPart> = []
  let carry: { readonly opener: string; readonly joinedWith: "\n" | "" } | undefined
  parts.forEach((original, index) => {
    let part = original
    if (carry !== undefined && part.reopened === carry.opener) {
      part = { ...part, reopened: undefined, content: `${carry.opener}\n${part.content}`, joinedWith: carry.joinedWith }
    }
    carry = undefined
    const next = parts[index + 1]
    const lastBreak = part.content.lastIndexOf("\n")
    const lastLine = part.content.slice(lastBreak + 1)
    const fence = parseFence(lastLine)
    if (part.closed !== undefined && next !== undefined && fence !== undefined && closerOf(fence) === part.closed && next.reopened === lastLine) {
      const content = lastBreak === -1 ? "" : part.content.slice(0, lastBreak)
      carry = { opener: lastLine, joinedWith: content === "" ? part.joinedWith : "\n" }
      if (content.trim() === "") return
      const text = part.reopened === undefined ? content : `${part.reopened}\n${content}`
      out.push({ text, reopened: part.reopened, closed: undefined, content, joinedWith: part.joinedWith })
      return
    }
    out.push(part)
  })
  return out
}

/**
 * Discord messages for `text`: each within `maxChars`, with fences balanced
 * in each (closed and reopened across a split), long lines split at
 * whitespace, then after CJK punctuation, then anywhere but inside a
 * character (inside a fence: exactly at the limit, whitespace kept).
 * Whitespace-only pieces are not sent; all-whitespace text gives no message.
 */
export const chunkDiscordText = (text: string, options?: ChunkOptions): ReadonlyArray<string> =>
  chunkDiscordTextDetailed(text, options).map((part) => part.text)
