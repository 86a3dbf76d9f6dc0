/**
 * The JSONL transcript: a header line, then append-only entries. This module
 * is pure: it parses text, checks the tool_use/tool_result invariant and
 * computes repairs. SessionStore does the I/O.
 */
import { Schema } from "effect"
import { AssistantMessage, Message, type ToolResultMessage, toolCallsOf } from "../agent/Message.ts"

export const TRANSCRIPT_VERSION = 3

export const Header = Schema.Struct({
  type: Schema.Literal("session"),
  version: Schema.Number,
  id: Schema.String,
  timestamp: Schema.String,
  cwd: Schema.String,
  key: Schema.optionalKey(Schema.String),
  agentId: Schema.optionalKey(Schema.String)
})
export type Header = typeof Header.Type

const entryBase = {
  id: Schema.NonEmptyString,
  parentId: Schema.NullOr(Schema.String),
  timestamp: Schema.String
}

export const MessageEntry = Schema.Struct({ type: Schema.Literal("message"), ...entryBase, message: Message })
export type MessageEntry = typeof MessageEntry.Type

export const CompactionEntry = Schema.Struct({
  type: Schema.Literal("compaction"),
  ...entryBase,
  summary: Schema.String,
  firstKeptEntryId: Schema.NullOr(Schema.String),
  tokensBefore: Schema.Number
})
export type CompactionEntry = typeof CompactionEntry.Type

export const CustomEntry = Schema.Struct({
  type: Schema.Literal("custom"),
  ...entryBase,
  customType: Schema.String,
  data: Schema.Unknown
})
export type CustomEntry = typeof CustomEntry.Type

/**
 * Entry types OpenClaw writes that BeamClaw does not act on yet (model and
 * thinking changes, branch summaries, UI-only messages). They are kept, so an
 * OpenClaw transcript loads without losing lines.
 */
export const ForeignEntry = Schema.Struct({
  type: Schema.Literals(["model_change", "thinking_level_change", "custom_message", "branch_summary", "leaf"]),
  ...entryBase
})
export type ForeignEntry = typeof ForeignEntry.Type

export const Entry = Schema.Union([MessageEntry, CompactionEntry, CustomEntry, ForeignEntry])
export type Entry = typeof Entry.Type

/**
 * The exact line each loaded entry came from. Decoding drops fields our
 * schema does not name (OpenClaw's `api`, `usage.cost`, …); a rewrite puts
 * the original line back so no field is lost.
 */
const originalLines = new WeakMap<object, string>()

const decodeHeader = Schema.decodeUnknownResult(Header)
const decodeEntry = Schema.decodeUnknownResult(Entry)

export interface LineProblem {
  /** 1-based line number in the file as it was read. */
  readonly line: number
  readonly problem: string
  readonly text: string
}

export interface ParsedTranscript {
  readonly header: Header | undefined
  readonly entries: ReadonlyArray<Entry>
  /** Lines that could not be decoded; kept verbatim so nothing is lost. */
  readonly badLines: ReadonlyArray<LineProblem>
  /** The file ended inside a line: the signature of a crash during a write. */
  readonly tornTail: boolean
  /** The last line is whole but lacks its newline; the next append would join it. */
  readonly missingNewline: boolean
}

const parseJson = (text: string): { ok: true; value: unknown } | { ok: false; error: string } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) }
  }
}

export const parse = (text: string): ParsedTranscript => {
  const lines = text.split("\n")
  // A file that does not end in "\n" was cut off during its last write,
  // unless its last line is whole and only the newline is missing.
  const missingNewline = text.length > 0 && !text.endsWith("\n")
  if (!missingNewline) lines.pop()
  const tornTail = missingNewline && !parseJson(lines.at(-1) ?? "").ok
  let header: Header | undefined
  const entries: Array<Entry> = []
  const badLines: Array<LineProblem> = []
  lines.forEach((line, index) => {
    const lineNumber = index + 1
    const isLast = index === lines.length - 1
    if (line.trim() === "") return
    const json = parseJson(line)
    if (!json.ok) {
      if (!(isLast && tornTail)) badLines.push({ line: lineNumber, problem: `not JSON (${json.error})`, text: line })
      return
    }
    if (index === 0 || header === undefined && entries.length === 0) {
      const decoded = decodeHeader(json.value)
      if (decoded._tag === "Success") {
        header = decoded.success
        return
      }
    }
    const decoded = decodeEntry(json.value)
    if (decoded._tag === "Success") {
      originalLines.set(decoded.success, line)
      entries.push(decoded.success)
    }
    else badLines.push({ line: lineNumber, problem: `not a transcript entry (${decoded.failure.message.split("\n")[0]})`, text: line })
  })
  return { header, entries, badLines, tornTail, missingNewline: missingNewline && !tornTail }
}

export interface Repair {
  readonly entries: ReadonlyArray<Entry>
  /** Human-readable descriptions of what was changed, empty when the transcript was sound. */
  readonly actions: ReadonlyArray<string>
  /** Entries appended by the repair (synthetic tool results). */
  readonly appended: ReadonlyArray<Entry>
  /** Entries dropped by the repair (orphan or duplicate tool results). */
  readonly dropped: ReadonlyArray<Entry>
}

export const INTERRUPTED_TOOL_TEXT = "Tool call interrupted: BeamClaw stopped before the tool finished, so it has no result."

const newEntryId = (): string => crypto.randomUUID().slice(0, 8)

export const syntheticToolResult = (call: { id: string; name: string }, text = INTERRUPTED_TOOL_TEXT, now = Date.now()): ToolResultMessage => ({
  role: "toolResult",
  toolCallId: call.id,
  toolName: call.name,
  content: [{ type: "text", text }],
  isError: true,
  timestamp: now
})

export const messageEntry = (message: Message, parentId: string | null, now = new Date()): MessageEntry => ({
  type: "message",
  id: newEntryId(),
  parentId,
  timestamp: now.toISOString(),
  message
})

/**
 * Enforces "every tool call has exactly one tool result, right after its
 * assistant message": orphan and duplicate results are dropped, missing ones
 * get a synthetic error result so the provider accepts the history again.
 */
export const repair = (entries: ReadonlyArray<Entry>): Repair => {
  const out: Array<Entry> = []
  const actions: Array<string> = []
  const appended: Array<Entry> = []
  const dropped: Array<Entry> = []
  let pending = new Map<string, { id: string; name: string }>()
  const answered = new Set<string>()
  const closePending = () => {
    for (const call of pending.values()) {
      const entry = messageEntry(syntheticToolResult(call), out.at(-1)?.id ?? null)
      out.push(entry)
      appended.push(entry)
      actions.push(`added a result for interrupted tool call ${call.id} (${call.name})`)
    }
    pending = new Map()
  }
  const seen = new Map<string, Entry>()
  for (const original of entries) {
    let entry = original
    const earlier = seen.get(entry.id)
    if (earlier !== undefined) {
      // The same line twice (a copy, a replayed write) is one entry: kept twice, a tool call in it would reach
      // the provider twice under one id, which it refuses on every later turn.
      if (encodeLine(earlier) === encodeLine(entry)) {
        dropped.push(entry)
        actions.push(`dropped a repeated copy of entry ${entry.id}`)
        continue
      }
      // Two different entries with one id make parent links and compaction points ambiguous.
      let id = newEntryId()
      while (seen.has(id)) id = newEntryId()
      actions.push(`gave the second entry with id ${entry.id} the new id ${id}`)
      entry = { ...entry, id }
    }
    seen.set(entry.id, entry)
    if (entry.type === "message" && entry.message.role === "toolResult") {
      const id = entry.message.toolCallId
      if (pending.has(id)) {
        pending.delete(id)
        answered.add(id)
        out.push(entry)
      } else {
        dropped.push(entry)
        actions.push(answered.has(id) ? `dropped a duplicate result for tool call ${id}` : `dropped an orphan result for unknown tool call ${id}`)
      }
      continue
    }
    closePending()
    out.push(entry)
    if (entry.type === "message" && entry.message.role === "assistant") {
      for (const call of toolCallsOf(entry.message)) pending.set(call.id, { id: call.id, name: call.name })
    }
  }
  closePending()
  return { entries: out, actions, appended, dropped }
}

export class TranscriptInvariantError extends Schema.TaggedError<TranscriptInvariantError>()("TranscriptInvariantError", {
  message: Schema.String
}) {}

/**
 * Tool calls of the last assistant message that still wait for a result.
 * Scans back only to the last assistant message: appends stay O(1) in the
 * length of the history.
 */
export const pendingToolCalls = (entries: ReadonlyArray<Entry>): ReadonlyArray<{ id: string; name: string }> => {
  const answered = new Set<string>()
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]
    if (entry === undefined || entry.type !== "message") continue
    const message = entry.message
    if (message.role === "toolResult") answered.add(message.toolCallId)
    else if (message.role === "user") return []
    else return toolCallsOf(message).filter((call) => !answered.has(call.id)).map((call) => ({ id: call.id, name: call.name }))
  }
  return []
}

type PendingCall = { readonly id: string; readonly name: string }

/**
 * One step of the invariant: the tool calls still open after `next`, or why
 * `next` may not follow `pending`. Appends check a batch with it, starting
 * from `pendingToolCalls` once, instead of rescanning the history per entry.
 */
export const stepPending = (pending: ReadonlyArray<PendingCall>, next: Entry): ReadonlyArray<PendingCall> | TranscriptInvariantError => {
  if (next.type !== "message") {
    return pending.length > 0 ? new TranscriptInvariantError({ message: `cannot append a ${next.type} entry while tool calls ${pending.map((c) => c.id).join(", ")} have no result` }) : pending
  }
  const message = next.message
  if (message.role === "toolResult") {
    if (!pending.some((call) => call.id === message.toolCallId)) {
      return new TranscriptInvariantError({ message: `tool result for ${message.toolCallId} matches no pending tool call` })
    }
    return pending.filter((call) => call.id !== message.toolCallId)
  }
  if (pending.length > 0) {
    return new TranscriptInvariantError({ message: `cannot append a ${message.role} message while tool calls ${pending.map((c) => c.id).join(", ")} have no result` })
  }
  return message.role === "assistant" ? toolCallsOf(message).map((call) => ({ id: call.id, name: call.name })) : []
}

/** Checks an append against the invariant before it reaches the disk. */
export const checkAppend = (entries: ReadonlyArray<Entry>, next: Entry): TranscriptInvariantError | undefined => {
  const step = stepPending(pendingToolCalls(entries), next)
  return step instanceof TranscriptInvariantError ? step : undefined
}

/** The messages the model sees: the latest compaction summary, then what followed it. */
export const contextMessages = (entries: ReadonlyArray<Entry>): { summary: string | undefined; messages: ReadonlyArray<Message> } => {
  let start = 0
  let summary: string | undefined
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]
    if (entry?.type === "compaction") {
      summary = entry.summary
      const keptIndex = entry.firstKeptEntryId === null ? -1 : entries.findIndex((e) => e.id === entry.firstKeptEntryId)
      start = keptIndex >= 0 && keptIndex < i ? keptIndex : i + 1
      break
    }
  }
  const messages: Array<Message> = []
  for (const entry of entries.slice(start)) {
    if (entry.type === "message") messages.push(entry.message)
  }
  return { summary, messages }
}

export const encodeLine = (value: Header | Entry): string => `${originalLines.get(value) ?? JSON.stringify(value)}\n`

export const isAssistant = Schema.is(AssistantMessage)
