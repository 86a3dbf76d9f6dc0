/**
 * Files the model attaches to its final reply, with OpenClaw's legacy
 * `MEDIA:` lines (reference/rich-output-protocol.md "Legacy MEDIA: lines"):
 *
 * - a line counts only when its trimmed text starts with `MEDIA:` (a
 *   Markdown wrapper such as `**MEDIA:…**` or `` `MEDIA:…` ``, or prose
 *   before it, keeps it text), outside fenced code blocks and indented code
 *   blocks (four columns or a tab after a blank line, as CommonMark; an
 *   indented line that continues a paragraph is not code);
 * - `MEDIA:"…"` quotes a reference whose punctuation belongs to it; unquoted,
 *   trailing punctuation is dropped, and a path with spaces stays one path;
 * - remote references must be public `https:` URLs (no `http:`, loopback,
 *   link-local, private or internal host names); local ones are absolute,
 *   workspace-relative or `~/` paths, never with `..` segments.
 *
 * The line leaves the text that is sent and becomes an attachment. A
 * reference that cannot be attached is never dropped in silence: it becomes
 * a short note naming it and the reason.
 *
 * Resolution (`resolveReplyMedia`) only attaches files inside the agent's
 * workspace or the state directory's `media/` folder (symlinks followed
 * first), never anything else of the state directory (even when the
 * workspace holds it, as `workspace: ~` does) nor the agent's own bootstrap
 * and memory files (AGENTS.md, SOUL.md, … MEMORY.md, `memory/`), of the
 * document types OpenClaw allows (images, audio, video, PDF, Office, and
 * Markdown/text/JSON/YAML that really are text), at most
 * `MAX_OUTBOUND_FILE_BYTES` each and `MAX_REPLY_FILES` per reply. Remote
 * files are fetched by `downloadFile`, the same code the WS `send` method
 * uses for `mediaUrl`, here with the public-address guard on every hop and
 * each connection pinned to the address that was checked; a remote file
 * whose URL name is not an allowed type is named after the server's content
 * type (`file-<n>.<ext>`) and its bytes must match that type.
 */
import type * as dns from "node:dns"
import * as dnsPromises from "node:dns/promises"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as zlib from "node:zlib"
import { Effect } from "effect"
import { isPublicAddress, localNameProblem, normalizeHostname } from "../platform/GuardedFetch.ts"
import type { OutboundFile } from "./Channel.ts"

/** Discord's upload limit for a bot without boosts; the WS `send` mediaUrl cap too. */
export const MAX_OUTBOUND_FILE_BYTES = 8 * 1024 * 1024
/** Discord takes at most 10 attachments per message. */
export const MAX_REPLY_FILES = 10
const MAX_REFERENCE_LENGTH = 4096
const MAX_REDIRECTS = 5
const DOWNLOAD_TIMEOUT = "30 seconds"

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

export interface MediaReference {
  /** The reference as written (without `MEDIA:`), for the note. */
  readonly raw: string
  /** The URL or path, unquoted and cleaned. */
  readonly value: string
  readonly kind: "remote" | "local"
  /** Why it cannot be attached, when the text alone tells. */
  readonly problem?: string | undefined
}

export interface SplitReply {
  /** The reply without its `MEDIA:` lines. */
  readonly text: string
  readonly media: ReadonlyArray<MediaReference>
}

const SCHEME_URL = /^[a-z][a-z0-9+.-]*:\/\//i
const HAS_FILE_EXT = /\.\w{1,10}$/
const TRAVERSAL = /(?:^|[/\\])\.\.(?:[/\\]|$)/

/** A remote host the gateway must not fetch from, and why; undefined for a public one (the guard of src/platform/GuardedFetch.ts). */
export const blockedHost = (hostname: string): string | undefined => {
  const host = normalizeHostname(hostname)
  if (host === "") return "it names no host"
  if (net.isIP(host) !== 0) return isPublicAddress(host) ? undefined : "it is a private or local address"
  if (host.split(".").some((label) => label === "")) return "its host name is not valid"
  return localNameProblem(host) === undefined ? undefined : "it is an internal host name"
}

/** A remote reference's problem, if any: only public https: URLs without credentials are fetched. */
const remoteProblem = (value: string): string | undefined => {
  if (!URL.canParse(value)) return "it is not a valid URL"
  const url = new URL(value)
  if (url.protocol !== "https:") return url.protocol === "http:" ? "only https: links are attached" : `${url.protocol} links are not supported`
  if (url.username !== "" || url.password !== "") return "links with credentials are not attached"
  return blockedHost(url.hostname)
}

/** What a token is: a remote or local reference (perhaps with a problem), or not a reference at all. */
const classify = (raw: string, value: string, allowBareName = true): MediaReference | undefined => {
  if (value === "") return undefined
  if (value.length > MAX_REFERENCE_LENGTH) return { raw, value: value.slice(0, 80), kind: "local", problem: "the reference is too long" }
  if (SCHEME_URL.test(value)) {
    if (/^file:/i.test(value)) {
      // Checked before parsing: the URL parser resolves `..` away.
      if (TRAVERSAL.test(value)) return { raw, value, kind: "local", problem: "the path goes up with .." }
      const url = URL.canParse(value) ? new URL(value) : undefined
      if (url === undefined || (url.hostname !== "" && url.hostname !== "localhost")) return { raw, value, kind: "local", problem: "only local file: links are attached" }
      return { raw, value: fileURLToPath(new URL(`file://${url.pathname}`)), kind: "local" }
    }
    const problem = remoteProblem(value)
    return { raw, value, kind: "remote", ...(problem === undefined ? {} : { problem }) }
  }
  const pathLike = value.startsWith("/") || value.startsWith("./") || value.startsWith("../") || value.startsWith("~") ||
    value.includes("/") || (allowBareName && HAS_FILE_EXT.test(value))
  if (!pathLike) return undefined
  if (value.startsWith("~") && !value.startsWith("~/")) return { raw, value, kind: "local", problem: "only ~/ paths are supported" }
  if (TRAVERSAL.test(value)) return { raw, value, kind: "local", problem: "the path goes up with .." }
  return { raw, value, kind: "local" }
}

/** Unquoted punctuation around a reference is not part of it (OpenClaw's cleanCandidate). */
const clean = (token: string): string => token.replace(/^[`"'[{(]+/, "").replace(/[`"'\\})\],]+$/, "")

/** Starts a reference of its own (and so is never the tail of a path with spaces). */
const independent = (token: string): boolean => /^(?:[/~]|\.{1,2}\/)/.test(token) || SCHEME_URL.test(token)

interface Token {
  readonly text: string
  readonly quoted: boolean
}

/**
 * The references of one `MEDIA:` payload, and what is left that is not one.
 * Returns undefined when nothing in it is a reference (the line stays text).
 */
export const parsePayload = (payload: string): { readonly refs: ReadonlyArray<MediaReference>; readonly rest: string } | undefined => {
  const trimmed = payload.trim()
  if (trimmed === "") return undefined
  // One quoted reference (its own punctuation, inner spaces and quotes included), unless it is a list of them.
  const listOfQuoted = /^"[^"]*"(?:\s+"[^"]*")+$/.test(trimmed)
  if (trimmed.length >= 2 && trimmed.startsWith("\"") && trimmed.endsWith("\"") && !listOfQuoted) {
    const ref = classify(trimmed, trimmed.slice(1, -1).trim())
    return ref === undefined ? undefined : { refs: [ref], rest: "" }
  }
  const tokens: Array<Token> = []
  let previousEnd = 0
  for (const match of trimmed.matchAll(/"[^"]*"(?=\s|$)|\S+/g)) {
    const quoted = match[0].length >= 2 && match[0].startsWith("\"") && match[0].endsWith("\"")
    const text = quoted ? match[0].slice(1, -1).trim() : match[0]
    const last = tokens.at(-1)
    // A path with spaces: the tail joins the path it continues, unless it is a reference of its own.
    const cleanedLast = last === undefined || last.quoted ? "" : clean(last.text)
    const cleaned = clean(text)
    if (
      last !== undefined && !last.quoted && !quoted && /^(?:[/~]|\.{1,2}\/)/.test(cleanedLast) && !independent(cleaned) &&
      (!HAS_FILE_EXT.test(cleanedLast) || !cleaned.includes("/"))
    ) {
      tokens[tokens.length - 1] = { text: `${last.text}${trimmed.slice(previousEnd, match.index)}${text}`, quoted: false }
    } else {
      tokens.push({ text, quoted })
    }
    previousEnd = match.index + match[0].length
  }
  const refs: Array<MediaReference> = []
  const rest: Array<string> = []
  for (const token of tokens) {
    // A bare file name counts alone or quoted; among other words it is prose (`MEDIA: version v1.2 released`).
    const ref = classify(token.quoted ? `"${token.text}"` : token.text, token.quoted ? token.text : clean(token.text), token.quoted || tokens.length === 1)
    if (ref === undefined) rest.push(token.quoted ? `"${token.text}"` : token.text)
    else refs.push(ref)
  }
  // Words that are no reference each may still be one file name with spaces (`MEDIA:render final.png`),
  // unless a later word starts a reference of its own (`MEDIA:see /tmp/a.png` is not one path).
  const oneName = refs.length === 0 || (refs.length === 1 && refs[0]?.kind === "local" && refs[0].problem === undefined && rest.length > 0 &&
    tokens.slice(1).every((token) => !token.quoted && !independent(clean(token.text))))
  if (oneName) {
    const whole = classify(trimmed, clean(trimmed))
    if (whole !== undefined && (refs.length === 0 || (whole.kind === "local" && whole.problem === undefined))) return { refs: [whole], rest: "" }
    if (refs.length === 0) return undefined
  }
  return { refs, rest: rest.join(" ") }
}

/** Columns of leading whitespace, tabs to the next multiple of four (CommonMark). */
const indentOf = (line: string): number => {
  let columns = 0
  for (const char of line) {
    if (char === " ") columns += 1
    else if (char === "\t") columns += 4 - (columns % 4)
    else break
  }
  return columns
}

/**
 * Splits a final reply into the text to send and the `MEDIA:` references.
 * Pure and deterministic: a reply recorded in the journal splits the same
 * way every time it is delivered.
 */
export const splitReplyMedia = (reply: string): SplitReply => {
  if (!reply.includes("MEDIA:")) return { text: reply, media: [] }
  const lines = reply.split("\n")
  const kept: Array<string> = []
  const media: Array<MediaReference> = []
  let fence: { readonly char: string; readonly length: number } | undefined
  let previousBlank = true
  let inIndentedCode = false
  // A removed line between two blank lines leaves one blank line, not two.
  let removedAfterBlank = false
  for (const line of lines) {
    const body = line.endsWith("\r") ? line.slice(0, -1) : line
    if (fence !== undefined) {
      kept.push(line)
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(body)
      if (close?.[1] !== undefined && close[1][0] === fence.char && close[1].length >= fence.length) fence = undefined
      previousBlank = false
      continue
    }
    const open = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(body)
    if (open?.[1] !== undefined && !(open[1][0] === "`" && (open[2] ?? "").includes("`"))) {
      fence = { char: open[1][0] ?? "`", length: open[1].length }
      kept.push(line)
      removedAfterBlank = false
      previousBlank = false
      inIndentedCode = false
      continue
    }
    const blank = body.trim() === ""
    if (blank) {
      if (!removedAfterBlank) kept.push(line)
      removedAfterBlank = false
      previousBlank = true
      continue
    }
    removedAfterBlank = false
    // Indented code starts after a blank line (it cannot interrupt a paragraph) and runs on through blank lines.
    if (indentOf(body) >= 4 && (previousBlank || inIndentedCode)) {
      kept.push(line)
      inIndentedCode = true
      previousBlank = false
      continue
    }
    inIndentedCode = false
    previousBlank = false
    const trimmed = body.trim()
    const parsed = trimmed.startsWith("MEDIA:") ? parsePayload(trimmed.slice("MEDIA:".length)) : undefined
    if (parsed === undefined) {
      kept.push(line)
      continue
    }
    media.push(...parsed.refs)
    if (parsed.rest !== "") kept.push(parsed.rest)
    else removedAfterBlank = (kept.at(-1) ?? "").trim() === ""
  }
  if (media.length === 0) return { text: reply, media: [] }
  // The removed lines leave no blank run at the start or the end.
  return { text: kept.join("\n").replace(/^(?:[ \t]*\r?\n)+/, "").trimEnd(), media }
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** The document types OpenClaw attaches from the host: images, audio, video, PDF, Office, and text documents. */
const TYPES: Readonly<Record<string, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  bmp: "image/bmp",
  heic: "image/heic",
  heif: "image/heif",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/opus",
  m4a: "audio/mp4",
  aac: "audio/aac",
  flac: "audio/flac",
  mp4: "video/mp4",
  m4v: "video/x-m4v",
  mov: "video/quicktime",
  webm: "video/webm",
  mkv: "video/x-matroska",
  avi: "video/x-msvideo",
  pdf: "application/pdf",
  doc: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  xlsm: "application/vnd.ms-excel.sheet.macroEnabled.12",
  ppt: "application/vnd.ms-powerpoint",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  odt: "application/vnd.oasis.opendocument.text",
  ods: "application/vnd.oasis.opendocument.spreadsheet",
  odp: "application/vnd.oasis.opendocument.presentation",
  md: "text/markdown",
  markdown: "text/markdown",
  txt: "text/plain",
  json: "application/json",
  yaml: "application/yaml",
  yml: "application/yaml"
}
/** The extension a file of an allowed content type is named with when its own name says nothing allowed. */
const EXTENSION_OF_TYPE: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>()
  for (const [extension, mime] of Object.entries(TYPES)) if (!map.has(mime)) map.set(mime, extension)
  const aliases: ReadonlyArray<readonly [string, string]> = [
    ["image/jpg", "jpg"], ["image/pjpeg", "jpg"], ["audio/mp3", "mp3"], ["audio/x-wav", "wav"], ["audio/wave", "wav"],
    ["audio/x-flac", "flac"], ["audio/x-m4a", "m4a"], ["text/x-markdown", "md"], ["application/x-yaml", "yaml"], ["text/yaml", "yaml"]
  ]
  for (const [mime, extension] of aliases) map.set(mime, extension)
  return map
})()
const TEXT_TYPES: ReadonlySet<string> = new Set(["md", "markdown", "txt", "json", "yaml", "yml"])

const extensionOf = (name: string): string => path.extname(name).slice(1).toLowerCase()

const startsWith = (data: Uint8Array, bytes: ReadonlyArray<number>, offset = 0): boolean =>
  data.length >= offset + bytes.length && bytes.every((byte, i) => data[offset + i] === byte)
const ascii = (text: string): ReadonlyArray<number> => [...text].map((c) => c.charCodeAt(0))

const RIFF = ascii("RIFF")
const ZIP = [0x50, 0x4b, 0x03, 0x04]
const OLE = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]
const isoBox = (data: Uint8Array) => ["ftyp", "moov", "wide", "mdat", "free", "skip"].some((box) => startsWith(data, ascii(box), 4))
const mpegAudio = (data: Uint8Array) => (data[0] === 0xff && ((data[1] ?? 0) & 0xe0) === 0xe0)

/** Magic numbers per extension; a type without a rule here is taken by its extension. */
const SIGNATURES: Readonly<Record<string, (data: Uint8Array) => boolean>> = {
  png: (d) => startsWith(d, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  jpg: (d) => startsWith(d, [0xff, 0xd8, 0xff]),
  jpeg: (d) => startsWith(d, [0xff, 0xd8, 0xff]),
  gif: (d) => startsWith(d, ascii("GIF87a")) || startsWith(d, ascii("GIF89a")),
  webp: (d) => startsWith(d, RIFF) && startsWith(d, ascii("WEBP"), 8),
  bmp: (d) => startsWith(d, ascii("BM")),
  heic: isoBox,
  heif: isoBox,
  pdf: (d) => Buffer.from(d.subarray(0, 1024)).includes("%PDF-"),
  docx: (d) => startsWith(d, ZIP),
  xlsx: (d) => startsWith(d, ZIP),
  xlsm: (d) => startsWith(d, ZIP),
  pptx: (d) => startsWith(d, ZIP),
  odt: (d) => startsWith(d, ZIP),
  ods: (d) => startsWith(d, ZIP),
  odp: (d) => startsWith(d, ZIP),
  doc: (d) => startsWith(d, OLE),
  xls: (d) => startsWith(d, OLE),
  ppt: (d) => startsWith(d, OLE),
  mp3: (d) => startsWith(d, ascii("ID3")) || mpegAudio(d),
  wav: (d) => startsWith(d, RIFF) && startsWith(d, ascii("WAVE"), 8),
  avi: (d) => startsWith(d, RIFF) && startsWith(d, ascii("AVI "), 8),
  ogg: (d) => startsWith(d, ascii("OggS")),
  oga: (d) => startsWith(d, ascii("OggS")),
  opus: (d) => startsWith(d, ascii("OggS")),
  flac: (d) => startsWith(d, ascii("fLaC")),
  aac: (d) => mpegAudio(d) || startsWith(d, ascii("ADIF")),
  m4a: isoBox,
  mp4: isoBox,
  m4v: isoBox,
  mov: isoBox,
  webm: (d) => startsWith(d, [0x1a, 0x45, 0xdf, 0xa3]),
  mkv: (d) => startsWith(d, [0x1a, 0x45, 0xdf, 0xa3])
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Why these bytes are not the file type their name says, if they are not. */
export const contentProblem = (extension: string, data: Uint8Array): string | undefined => {
  if (TEXT_TYPES.has(extension)) {
    let text: string
    try {
      text = utf8.decode(data)
    } catch {
      return "it is not UTF-8 text"
    }
    if (text.includes("\u0000")) return "it is not text"
    if (extension === "json") {
      try {
        JSON.parse(text)
      } catch {
        return "it is not valid JSON"
      }
    }
    return undefined
  }
  const signature = SIGNATURES[extension]
  return signature === undefined || signature(data) ? undefined : `its content is not a .${extension} file`
}

/** The content type of an allowed file name, or undefined when its type is not attached. */
export const allowedTypeOf = (name: string): string | undefined => TYPES[extensionOf(name)]

// ---------------------------------------------------------------------------
// Downloading (shared with WS `send`)
// ---------------------------------------------------------------------------

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

export const fileNameOf = (url: URL, index: number): string => {
  const last = decodeURIComponent(url.pathname.split("/").at(-1) ?? "")
  return last === "" ? `file-${index + 1}` : last
}

export interface DownloadOptions {
  /**
   * Fetch only from public addresses over https: the host name is checked on
   * the first request and on every redirect, and each connection is pinned to
   * an address that was checked (the check runs inside the socket's own name
   * resolution, so a host that answers differently the second time cannot
   * move the connection to a private address).
   */
  readonly publicOnly?: boolean | undefined
  /** Name resolution (tests); its answer is what the connection uses. */
  readonly lookup?: ((host: string) => Promise<ReadonlyArray<string>>) | undefined
  /**
   * Which resolved addresses count as public (tests, where a loopback alias
   * stands in for a public server); IP literals in URLs are always checked
   * with `isPublicAddress`.
   */
  readonly isPublic?: ((address: string) => boolean) | undefined
  /** Certificate authorities to trust instead of the default ones, PEM (tests). */
  readonly ca?: string | undefined
}

type Resolve = (host: string) => Promise<ReadonlyArray<string>>

const defaultLookup: Resolve = async (host) => (await dnsPromises.lookup(host, { all: true, verbatim: true })).map((entry) => entry.address)

/** The addresses a connection may use, or why it may use none. */
const usableAddresses = (
  host: string,
  addresses: ReadonlyArray<string>,
  family: number,
  isPublic: ((address: string) => boolean) | undefined
): Error | Array<dns.LookupAddress> => {
  if (isPublic !== undefined) {
    const bad = addresses.find((address) => !isPublic(address))
    if (bad !== undefined) return new Error(`${host} resolves to a non-public address (${bad})`)
  }
  const usable = addresses.flatMap((address) => {
    const of = net.isIP(address)
    return of === 0 || (family !== 0 && family !== of) ? [] : [{ address, family: of }]
  })
  return usable.length === 0 ? new Error(`${host} does not resolve`) : usable
}

/**
 * The socket's name resolution: resolves, checks every address (when
 * `isPublic` is given) and hands exactly the checked addresses to the socket.
 */
const pinnedLookup = (resolve: Resolve, isPublic: ((address: string) => boolean) | undefined): net.LookupFunction =>
  (hostname, options, callback) => {
    const family = options.family === 4 || options.family === "IPv4" ? 4 : options.family === 6 || options.family === "IPv6" ? 6 : 0
    const answer = (result: Error | Array<dns.LookupAddress>) => {
      if (result instanceof Error) return callback(result, [])
      const first = result[0]
      if (options.all === true || first === undefined) return callback(null, result)
      return callback(null, first.address, first.family)
    }
    resolve(hostname).then(
      (addresses) => answer(usableAddresses(hostname, addresses, family, isPublic)),
      (error: unknown) => answer(error instanceof Error ? error : new Error(String(error)))
    )
  }

/** Why a hop's URL is not fetched, if it is not. */
const hopProblem = (url: URL, publicOnly: boolean): string | undefined => {
  if (publicOnly) {
    if (url.protocol !== "https:") return "only https: links are attached"
    if (url.username !== "" || url.password !== "") return "links with credentials are not attached"
    return blockedHost(url.hostname)
  }
  return url.protocol === "https:" || url.protocol === "http:" ? undefined : `${url.protocol} links are not supported`
}

/** One GET, resolved with its response head; the connection goes through `lookup` when given. */
const get = (url: URL, options: DownloadOptions, publicOnly: boolean, signal: AbortSignal) =>
  new Promise<{ readonly request: http.ClientRequest; readonly response: http.IncomingMessage }>((resolve, reject) => {
    const resolver = options.lookup ?? (publicOnly ? defaultLookup : undefined)
    const lookup = resolver === undefined ? undefined : pinnedLookup(resolver, publicOnly ? options.isPublic ?? isPublicAddress : undefined)
    const requestOptions: https.RequestOptions = {
      method: "GET",
      // No pooled sockets: every request resolves (and checks) its own address.
      agent: false,
      signal,
      headers: { "accept-encoding": "gzip, identity", "user-agent": "BeamClaw" },
      ...(lookup === undefined ? {} : { lookup }),
      ...(options.ca === undefined ? {} : { ca: options.ca })
    }
    const request = (url.protocol === "https:" ? https : http).request(url, requestOptions, (response) => resolve({ request, response }))
    request.on("error", reject)
    request.end()
  })

const tooLarge = (limit: number) => new Error(`larger than ${limit / 1024 / 1024} MiB`)

/** Reads a body up to `limit` bytes (after gzip decoding); more is an error, not a truncated file. */
const readCapped = async (response: http.IncomingMessage, limit: number): Promise<Uint8Array> => {
  const declared = Number(response.headers["content-length"] ?? "")
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit)
  const encoding = (response.headers["content-encoding"] ?? "identity").trim().toLowerCase()
  if (encoding !== "identity" && encoding !== "gzip" && encoding !== "x-gzip") throw new Error(`it is sent with content-encoding ${encoding}`)
  const chunks: Array<Uint8Array> = []
  let total = 0
  for await (const chunk of response) {
    const bytes: unknown = chunk
    if (!(bytes instanceof Uint8Array)) throw new Error("unexpected response body")
    total += bytes.byteLength
    if (total > limit) throw tooLarge(limit)
    chunks.push(bytes)
  }
  const body = Buffer.concat(chunks)
  if (encoding === "identity") return body
  return new Promise((resolve, reject) =>
    zlib.gunzip(body, { maxOutputLength: limit }, (error, result) => {
      if (error === null) resolve(result)
      else reject("code" in error && error.code === "ERR_BUFFER_TOO_LARGE" ? tooLarge(limit) : new Error(`its gzip encoding is broken (${error.message})`))
    }))
}

/**
 * Downloads one file to attach, at most MAX_OUTBOUND_FILE_BYTES, with
 * node:http(s) so the connection's address is the one that was checked.
 * Fails with the reason as a string; callers decide whether that fails a
 * send (WS `send`) or becomes a note (a model's reply). Interruption (and the
 * 30 s timeout) aborts the request.
 */
export const downloadFile = (url: URL, index: number, options: DownloadOptions = {}): Effect.Effect<OutboundFile, string> =>
  Effect.tryPromise({
    try: async (signal) => {
      const publicOnly = options.publicOnly === true
      let current = url
      for (let hop = 0; ; hop++) {
        const problem = hopProblem(current, publicOnly)
        if (problem !== undefined) throw new Error(problem)
        const { request, response } = await get(current, options, publicOnly, signal)
        try {
          const status = response.statusCode ?? 0
          const location = response.headers.location
          if (status >= 300 && status < 400 && location !== undefined) {
            if (hop >= MAX_REDIRECTS) throw new Error("too many redirects")
            if (!URL.canParse(location, current.href)) throw new Error("it redirects to an invalid URL")
            current = new URL(location, current)
            continue
          }
          if (status < 200 || status >= 300) throw new Error(`HTTP ${status}`)
          const data = await readCapped(response, MAX_OUTBOUND_FILE_BYTES)
          const contentType = response.headers["content-type"]
          return { name: fileNameOf(url, index), data, contentType }
        } finally {
          // Nothing of an abandoned response is read: its socket goes.
          request.destroy()
        }
      }
    },
    catch: describe
  }).pipe(Effect.timeoutOrElse({ duration: DOWNLOAD_TIMEOUT, orElse: () => Effect.fail("timed out") }))

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

export interface MediaRoots {
  /** The agent's workspace: relative references resolve here. */
  readonly workspace: string
  /** `<state>/media`: files the gateway keeps for sending. */
  readonly mediaDir: string
  /** For `~/` references; the process's home by default. */
  readonly homeDir?: string | undefined
  /**
   * The gateway's state directory (`BEAMCLAW_HOME`), the parent of `mediaDir`
   * by default: nothing in it is attached except `media/` and the agent's
   * workspace when that lies inside it.
   */
  readonly stateDir?: string | undefined
}

export interface ResolvedMedia {
  readonly files: ReadonlyArray<OutboundFile>
  /** One line per reference that could not be attached, naming it and why. */
  readonly notes: ReadonlyArray<string>
}

const realOrUndefined = (target: string) => fs.realpath(target).catch(() => undefined)

const inside = (file: string, root: string): boolean => file === root || file.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`)

/** The agent's bootstrap and memory files (lower case: a case-insensitive file system opens `soul.md` as `SOUL.md`). */
const OWN_FILES: ReadonlySet<string> = new Set([
  "agents.md", "soul.md", "tools.md", "identity.md", "user.md", "heartbeat.md", "bootstrap.md", "memory.md"
])

/** One of the agent's own files: a bootstrap or memory file by name, or anything in the workspace's `memory/` folder. */
const isOwnFile = (file: string, workspace: string | undefined): boolean => {
  if (OWN_FILES.has(path.basename(file).toLowerCase())) return true
  if (workspace === undefined || !inside(file, workspace)) return false
  return path.relative(workspace, file).split(path.sep)[0]?.toLowerCase() === "memory"
}

const OWN_FILE = "it is one of the agent's own files"

const localFile = async (ref: MediaReference, roots: MediaRoots): Promise<OutboundFile> => {
  const home = roots.homeDir ?? os.homedir()
  const workspace = path.resolve(roots.workspace)
  const wanted = ref.value.startsWith("~/") ? path.join(home, ref.value.slice(2)) : path.resolve(workspace, ref.value)
  const name = path.basename(wanted)
  // Refused by name before the file system is asked, so a reply cannot probe for them either.
  if (isOwnFile(wanted, workspace)) throw new Error(OWN_FILE)
  if (allowedTypeOf(name) === undefined) throw new Error(`.${extensionOf(name) || "(no extension)"} files are not attached`)
  const real = await fs.realpath(wanted).catch((error: unknown) => {
    throw new Error(typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT" ? "not found" : describe(error))
  })
  const [realWorkspace, realMedia, realState] = await Promise.all([
    realOrUndefined(workspace),
    realOrUndefined(roots.mediaDir),
    realOrUndefined(roots.stateDir ?? path.dirname(path.resolve(roots.mediaDir)))
  ])
  if (isOwnFile(real, realWorkspace)) throw new Error(OWN_FILE)
  const inWorkspace = realWorkspace !== undefined && inside(real, realWorkspace)
  const inMedia = realMedia !== undefined && inside(real, realMedia)
  if (!inWorkspace && !inMedia) throw new Error("only files in the agent's workspace or the media folder are attached")
  // A workspace that holds the state directory (`workspace: ~`) does not open it: its config, credentials and
  // transcripts stay; a workspace inside it (the default `<state>/workspace`) is the agent's own.
  const workspaceInsideState = realWorkspace !== undefined && realState !== undefined && realWorkspace !== realState && inside(realWorkspace, realState)
  if (realState !== undefined && inside(real, realState) && !inMedia && !(inWorkspace && workspaceInsideState)) {
    throw new Error("it is in the gateway's state directory (only its media folder is attached)")
  }
  const extension = extensionOf(real)
  if (allowedTypeOf(real) === undefined) throw new Error(`.${extension || "(no extension)"} files are not attached`)
  const stat = await fs.stat(real)
  if (!stat.isFile()) throw new Error("not a file")
  if (stat.size > MAX_OUTBOUND_FILE_BYTES) throw new Error(`larger than ${MAX_OUTBOUND_FILE_BYTES / 1024 / 1024} MiB`)
  const data = new Uint8Array(await fs.readFile(real))
  if (data.byteLength > MAX_OUTBOUND_FILE_BYTES) throw new Error(`larger than ${MAX_OUTBOUND_FILE_BYTES / 1024 / 1024} MiB`)
  const problem = contentProblem(extension, data)
  if (problem !== undefined) throw new Error(problem)
  return { name, data, contentType: allowedTypeOf(real) }
}

const remoteFile = (ref: MediaReference, index: number, options: DownloadOptions) =>
  Effect.gen(function*() {
    const url = new URL(ref.value)
    const file = yield* downloadFile(url, index, { ...options, publicOnly: true })
    const byName = allowedTypeOf(file.name)
    if (byName !== undefined) {
      const problem = contentProblem(extensionOf(file.name), file.data)
      if (problem !== undefined) return yield* Effect.fail(problem)
      return { ...file, contentType: byName }
    }
    // The URL's name is not an allowed type (`/evil.exe`, `/download`): the server's type names the file, and the
    // bytes must be of that type, so a name the recipient would run never rides on an allowed content type.
    const mime = (file.contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
    const extension = EXTENSION_OF_TYPE.get(mime)
    if (extension === undefined) return yield* Effect.fail(`${mime === "" ? "its type" : mime} is not an attached file type`)
    const problem = contentProblem(extension, file.data)
    if (problem !== undefined) return yield* Effect.fail(problem)
    return { name: `file-${index + 1}.${extension}`, data: file.data, contentType: TYPES[extension] }
  })

/** The note for a reference that could not be attached. */
export const noteFor = (ref: MediaReference, reason: string): string => `⚠️ Could not attach ${ref.raw}: ${reason}.`

/**
 * Reads or downloads every reference; each one that cannot be had becomes a
 * note instead. Never fails: a reply goes out with what could be attached.
 */
export const resolveReplyMedia = (refs: ReadonlyArray<MediaReference>, roots: MediaRoots, options: DownloadOptions = {}): Effect.Effect<ResolvedMedia> =>
  Effect.gen(function*() {
    const files: Array<OutboundFile> = []
    const notes: Array<string> = []
    for (const [index, ref] of refs.entries()) {
      if (ref.problem !== undefined) {
        notes.push(noteFor(ref, ref.problem))
        continue
      }
      if (files.length >= MAX_REPLY_FILES) {
        notes.push(noteFor(ref, `at most ${MAX_REPLY_FILES} files go with one reply`))
        continue
      }
      const result = ref.kind === "remote"
        ? yield* Effect.result(remoteFile(ref, index, options))
        : yield* Effect.result(Effect.tryPromise({ try: () => localFile(ref, roots), catch: describe }))
      if (result._tag === "Success") files.push(result.success)
      else notes.push(noteFor(ref, result.failure))
    }
    return { files, notes }
  })
