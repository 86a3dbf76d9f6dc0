import { describe, expect, it } from "vitest"
import type { AssistantMessage, Message } from "../../src/agent/Message.ts"
import * as Transcript from "../../src/session/Transcript.ts"

const header: Transcript.Header = { type: "session", version: 3, id: "s1", timestamp: "2026-11-25T00:00:00.000Z", cwd: "/w", key: "agent:main:main", agentId: "main" }
const user = (text: string): Message => ({ role: "user", content: text, timestamp: 1 })
const assistant = (text: string, calls: Array<{ id: string; name: string }> = []): AssistantMessage => ({
  role: "assistant",
  content: [{ type: "text", text }, ...calls.map((c) => ({ type: "toolCall" as const, id: c.id, name: c.name, arguments: {} }))],
  provider: "anthropic",
  model: "m",
  usage: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 2 },
  stopReason: calls.length > 0 ? "toolUse" : "stop",
  timestamp: 2
})
const result = (id: string): Message => ({ role: "toolResult", toolCallId: id, toolName: "t", content: [{ type: "text", text: "ok" }], isError: false, timestamp: 3 })
const entry = (message: Message) => Transcript.messageEntry(message, null)
const file = (...entries: Array<Transcript.Header | Transcript.Entry>) => entries.map(Transcript.encodeLine).join("")

describe("Transcript.parse", () => {
  it("reads a sound file", () => {
    const parsed = Transcript.parse(file(header, entry(user("hi")), entry(assistant("hello"))))
    expect(parsed.header?.id).toBe("s1")
    expect(parsed.entries).toHaveLength(2)
    expect(parsed.badLines).toEqual([])
    expect(parsed.tornTail).toBe(false)
  })

  it("detects a torn last line without counting it as corrupt", () => {
    const text = file(header, entry(user("hi"))) + `{"type":"message","id":"ab`
    const parsed = Transcript.parse(text)
    expect(parsed.tornTail).toBe(true)
    expect(parsed.entries).toHaveLength(1)
    expect(parsed.badLines).toEqual([])
  })

  it("reports unreadable lines by number and keeps their text", () => {
    const text = file(header, entry(user("hi"))) + "not json\n" + `{"type":"mystery"}\n` + file(entry(assistant("hello")))
    const parsed = Transcript.parse(text)
    expect(parsed.entries).toHaveLength(2)
    expect(parsed.badLines.map((b) => b.line)).toEqual([3, 4])
    expect(parsed.badLines[0]?.problem).toContain("not JSON")
    expect(parsed.badLines[1]?.problem).toContain("not a transcript entry")
    expect(parsed.badLines[0]?.text).toBe("not json")
  })
})

describe("Transcript.repair", () => {
  it("leaves a sound transcript alone", () => {
    const entries = [entry(user("q")), entry(assistant("", [{ id: "c1", name: "t" }])), entry(result("c1")), entry(assistant("done"))]
    const repaired = Transcript.repair(entries)
    expect(repaired.actions).toEqual([])
    expect(repaired.entries).toEqual(entries)
  })

  it("adds a result for a tool call interrupted by a crash", () => {
    const entries = [entry(user("q")), entry(assistant("", [{ id: "c1", name: "t" }, { id: "c2", name: "t" }])), entry(result("c1"))]
    const repaired = Transcript.repair(entries)
    expect(repaired.appended).toHaveLength(1)
    const last = repaired.entries.at(-1)
    expect(last?.type === "message" && last.message.role === "toolResult" && last.message.toolCallId).toBe("c2")
    expect(repaired.actions[0]).toContain("interrupted tool call c2")
    expect(Transcript.pendingToolCalls(repaired.entries)).toEqual([])
  })

  it("places the missing result before the next user message", () => {
    const entries = [entry(user("q")), entry(assistant("", [{ id: "c1", name: "t" }])), entry(user("again"))]
    const repaired = Transcript.repair(entries)
    const roles = repaired.entries.map((e) => e.type === "message" ? e.message.role : e.type)
    expect(roles).toEqual(["user", "assistant", "toolResult", "user"])
  })

  it("drops orphan and duplicate results", () => {
    const entries = [entry(user("q")), entry(result("ghost")), entry(assistant("", [{ id: "c1", name: "t" }])), entry(result("c1")), entry(result("c1"))]
    const repaired = Transcript.repair(entries)
    expect(repaired.dropped).toHaveLength(2)
    expect(repaired.actions.join(" ")).toContain("orphan")
    expect(repaired.actions.join(" ")).toContain("duplicate")
  })
})

describe("Transcript.checkAppend", () => {
  it("refuses a result that answers nothing and a message that skips pending results", () => {
    const entries = [entry(user("q")), entry(assistant("", [{ id: "c1", name: "t" }]))]
    expect(Transcript.checkAppend(entries, entry(result("c9")))?.message).toContain("matches no pending tool call")
    expect(Transcript.checkAppend(entries, entry(user("next")))?.message).toContain("have no result")
    expect(Transcript.checkAppend(entries, entry(result("c1")))).toBeUndefined()
  })
})

describe("Transcript.stepPending", () => {
  it("tracks open tool calls across a batch and refuses what breaks the invariant", () => {
    let pending: ReturnType<typeof Transcript.stepPending> = []
    const step = (next: Message) => {
      if (pending instanceof Transcript.TranscriptInvariantError) throw pending
      pending = Transcript.stepPending(pending, entry(next))
      return pending
    }
    expect(step(user("q"))).toEqual([])
    expect(step(assistant("", [{ id: "c1", name: "t" }, { id: "c2", name: "t" }]))).toEqual([{ id: "c1", name: "t" }, { id: "c2", name: "t" }])
    expect(step(result("c2"))).toEqual([{ id: "c1", name: "t" }])
    const refused = Transcript.stepPending([{ id: "c1", name: "t" }], entry(user("too early")))
    expect(refused).toBeInstanceOf(Transcript.TranscriptInvariantError)
    expect(step(result("c1"))).toEqual([])
    expect(Transcript.stepPending([], entry(result("c1")))).toBeInstanceOf(Transcript.TranscriptInvariantError)
  })
})

describe("Transcript.contextMessages", () => {
  it("starts from the latest compaction summary and the kept entries", () => {
    const a = entry(user("old"))
    const b = entry(assistant("old answer"))
    const c = entry(user("kept"))
    const compaction: Transcript.CompactionEntry = { type: "compaction", id: "cmp1", parentId: c.id, timestamp: "t", summary: "S", firstKeptEntryId: c.id, tokensBefore: 100 }
    const d = entry(assistant("new"))
    const context = Transcript.contextMessages([a, b, c, compaction, d])
    expect(context.summary).toBe("S")
    expect(context.messages.map((m) => m.role)).toEqual(["user", "assistant"])
  })
})

describe("OpenClaw transcripts", () => {
  it("keeps OpenClaw entry types and fields BeamClaw does not use when rewriting", () => {
    const assistantLine = JSON.stringify({
      type: "message", id: "a1", parentId: null, timestamp: "t",
      message: { role: "assistant", content: [{ type: "text", text: "hi" }], api: "anthropic-messages", provider: "anthropic", model: "m", usage: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 2, cost: { total: 0.01 } }, stopReason: "stop", timestamp: 1 }
    })
    const modelChange = JSON.stringify({ type: "model_change", id: "m1", parentId: "a1", timestamp: "t", provider: "anthropic", modelId: "claude-x" })
    const text = [JSON.stringify(header), assistantLine, modelChange].join("\n") + "\n"
    const parsed = Transcript.parse(text)
    expect(parsed.badLines).toEqual([])
    expect(parsed.entries.map((e) => e.type)).toEqual(["message", "model_change"])
    const rewritten = [header, ...parsed.entries].map(Transcript.encodeLine).join("")
    expect(rewritten).toContain(`"cost":{"total":0.01}`)
    expect(rewritten).toContain(`"modelId":"claude-x"`)
  })

  it("treats a whole last line without its newline as sound but unterminated", () => {
    const text = file(header, entry(user("hi"))).slice(0, -1)
    const parsed = Transcript.parse(text)
    expect(parsed.tornTail).toBe(false)
    expect(parsed.missingNewline).toBe(true)
    expect(parsed.entries).toHaveLength(1)
  })
})

describe("Transcript.repair ids", () => {
  it("gives a duplicated entry id a new one", () => {
    const a = entry(user("one"))
    const b = { ...entry(assistant("two")), id: a.id }
    const repaired = Transcript.repair([a, b])
    expect(new Set(repaired.entries.map((e) => e.id)).size).toBe(2)
    expect(repaired.actions[0]).toContain(`id ${a.id}`)
  })

  it("drops a line repeated whole (a copy of an answered tool call), instead of sending its call twice", () => {
    const question = entry(user("weather?"))
    const call = entry(assistant("checking", [{ id: "toolu_1", name: "weather" }]))
    const answer = entry(result("toolu_1"))
    // Read back from disk, as a load sees it: the repeated line right after the first.
    const parsed = Transcript.parse(file(header, question, call, call, answer)).entries
    const repaired = Transcript.repair(parsed)
    expect(repaired.entries.map((e) => e.id)).toEqual([question.id, call.id, answer.id])
    expect(repaired.actions).toEqual([`dropped a repeated copy of entry ${call.id}`])
    // No synthetic result for a call that was answered.
    expect(repaired.appended).toEqual([])
  })
})
