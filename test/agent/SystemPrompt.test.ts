import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import {
  buildSystemPrompt,
  DEFAULT_HEARTBEAT_PROMPT,
  IDENTITY_LINE,
  orderTools,
  runtimeLine,
  type SystemPromptInput
} from "../../src/agent/SystemPrompt.ts"
import { ensureWorkspace, loadBootstrapFiles, SEED_TEMPLATES } from "../../src/agent/Workspace.ts"

const runtime = {
  agentId: "main",
  host: "box",
  os: "linux",
  arch: "x64",
  node: "v24.21.0",
  model: "anthropic/claude-sonnet-4-5",
  channel: "telegram",
  thinking: "low"
}

const fullInput: SystemPromptInput = {
  mode: "full",
  tools: [
    { name: "exec", summary: "Run shell commands" },
    { name: "read", summary: "Read file contents" },
    { name: "zeta_plugin", summary: "A plugin tool" },
    { name: "alpha_plugin", summary: "Another plugin tool" },
    { name: "session_status", summary: "Show session status" }
  ],
  skillsPrompt: "<available_skills>\n<skill><name>weather</name></skill>\n</available_skills>",
  workspaceDir: "/home/me/.beamclaw/workspace",
  workspaceNotes: ["Commit your notes with git."],
  userTimezone: "Europe/Berlin",
  extraSystemPrompt: "You are in the family group.",
  contextFiles: [
    { name: "AGENTS.md", content: "agents body" },
    { name: "SOUL.md", content: "soul body" }
  ],
  heartbeatPrompt: "Check the inbox.",
  runtime
}

const headings = (prompt: string): ReadonlyArray<string> =>
  prompt.split("\n").filter((line) => /^#{1,2} /.test(line))

const positions = (prompt: string, markers: ReadonlyArray<string>): ReadonlyArray<number> =>
  markers.map((marker) => {
    const index = prompt.indexOf(marker)
    assert.isAtLeast(index, 0, `missing ${marker}`)
    return index
  })

const assertIncreasing = (values: ReadonlyArray<number>) => {
  for (let i = 1; i < values.length; i++) assert.isAbove(values[i]!, values[i - 1]!)
}

describe("buildSystemPrompt", () => {
  it("renders the full prompt in OpenClaw's section order", () => {
    const prompt = buildSystemPrompt(fullInput)
    assert.isTrue(prompt.startsWith(`${IDENTITY_LINE}\n\n## Tooling\n`))
    assert.deepStrictEqual(headings(prompt), [
      "## Tooling",
      "## Tool Call Style",
      "## Safety",
      "## Skills (mandatory)",
      "## Workspace",
      "## Current Date & Time",
      "## Group Chat Context",
      "# Project Context",
      "## AGENTS.md",
      "## SOUL.md",
      "## Silent Replies",
      "## Heartbeats",
      "## Runtime"
    ])
    assert.isTrue(prompt.endsWith(`## Runtime\n${runtimeLine(runtime)}`))
  })

  it("lists tools as `- name: summary`, core tools first, the rest alphabetically", () => {
    const prompt = buildSystemPrompt(fullInput)
    assertIncreasing(positions(prompt, [
      "- read: Read file contents",
      "- exec: Run shell commands",
      "- session_status: Show session status",
      "- alpha_plugin: Another plugin tool",
      "- zeta_plugin: A plugin tool"
    ]))
  })

  it("dedupes tools by name and keeps each summary on one line", () => {
    const tools = orderTools([
      { name: "read", summary: "first\n  line two" },
      { name: "read", summary: "duplicate" },
      { name: "  ", summary: "blank name" }
    ])
    assert.deepStrictEqual(tools, [{ name: "read", summary: "first line two" }])
  })

  it("says so when no tools are available", () => {
    const prompt = buildSystemPrompt({ ...fullInput, tools: [] })
    assert.include(prompt, "No tools are available in this session.")
    assert.notMatch(prompt, /^- \w+: /m)
  })

  it("adds the cron and sub-agent hints only when those tools exist", () => {
    const without = buildSystemPrompt(fullInput)
    assert.notInclude(without, "sessions_spawn")
    assert.notInclude(without, "cron job")
    const withTools = buildSystemPrompt({
      ...fullInput,
      tools: [...(fullInput.tools ?? []), { name: "cron", summary: "Schedule jobs" }, {
        name: "sessions_spawn",
        summary: "Spawn a sub-agent"
      }]
    })
    assert.include(withTools, "delegate to a sub-agent with sessions_spawn")
    assert.include(withTools, "schedule a cron job")
  })

  it("is deterministic, whatever order the tools arrive in", () => {
    const a = buildSystemPrompt(fullInput)
    const b = buildSystemPrompt({ ...fullInput, tools: [...(fullInput.tools ?? [])].reverse() })
    assert.strictEqual(a, b)
    assert.strictEqual(buildSystemPrompt(fullInput), a)
  })

  it("gives the time zone but never a clock reading", () => {
    const prompt = buildSystemPrompt(fullInput)
    assert.include(prompt, "## Current Date & Time\nTime zone: Europe/Berlin\n")
    assert.include(prompt, "call session_status")
    assert.notInclude(prompt, String(new Date().getFullYear()))
    const noTz = buildSystemPrompt({ ...fullInput, userTimezone: undefined })
    assert.notInclude(noTz, "## Current Date & Time")
    const noStatusTool = buildSystemPrompt({ ...fullInput, tools: [] })
    assert.notInclude(noStatusTool, "session_status")
  })

  it("omits Skills when the skills prompt is empty", () => {
    for (const skillsPrompt of [undefined, "", "  \n "]) {
      assert.notInclude(buildSystemPrompt({ ...fullInput, skillsPrompt }), "## Skills")
    }
    assert.include(buildSystemPrompt(fullInput), "<available_skills>\n<skill><name>weather</name></skill>")
  })

  it("includes the working directory and workspace notes", () => {
    const prompt = buildSystemPrompt(fullInput)
    assert.include(prompt, "## Workspace\nYour working directory is: /home/me/.beamclaw/workspace\n")
    assert.include(prompt, "Commit your notes with git.")
  })

  it("injects each context file under its own heading, with the persona hint only for a real SOUL.md", () => {
    const prompt = buildSystemPrompt(fullInput)
    assert.include(prompt, "## AGENTS.md\n\nagents body")
    assert.include(prompt, "## SOUL.md\n\nsoul body")
    assert.include(prompt, "SOUL.md describes your persona")

    const missingSoul = buildSystemPrompt({
      ...fullInput,
      contextFiles: [{ name: "SOUL.md", content: "[MISSING] Expected at: /x/SOUL.md", missing: true }]
    })
    assert.notInclude(missingSoul, "SOUL.md describes your persona")
    assert.include(missingSoul, "[MISSING] Expected at: /x/SOUL.md")

    const none = buildSystemPrompt({ ...fullInput, contextFiles: [] })
    assert.notInclude(none, "# Project Context")
  })

  it("explains NO_REPLY and HEARTBEAT_OK with the configured heartbeat prompt", () => {
    const prompt = buildSystemPrompt(fullInput)
    assert.include(prompt, "reply with only: NO_REPLY")
    assert.include(prompt, "Heartbeat prompt: Check the inbox.")
    assert.include(prompt, "reply exactly: HEARTBEAT_OK")
    const defaulted = buildSystemPrompt({ ...fullInput, heartbeatPrompt: undefined })
    assert.include(defaulted, `Heartbeat prompt: ${DEFAULT_HEARTBEAT_PROMPT}`)
  })

  it("minimal mode drops Skills, Silent Replies and Heartbeats and labels extra context for sub-agents", () => {
    const prompt = buildSystemPrompt({ ...fullInput, mode: "minimal" })
    assert.deepStrictEqual(headings(prompt), [
      "## Tooling",
      "## Tool Call Style",
      "## Safety",
      "## Workspace",
      "## Current Date & Time",
      "## Subagent Context",
      "# Project Context",
      "## AGENTS.md",
      "## SOUL.md",
      "## Runtime"
    ])
    assert.notInclude(prompt, "NO_REPLY")
    assert.notInclude(prompt, "HEARTBEAT_OK")
    assert.notInclude(prompt, "<available_skills>")
  })

  it("none mode returns only the identity line", () => {
    assert.strictEqual(buildSystemPrompt({ ...fullInput, mode: "none" }), IDENTITY_LINE)
    assert.strictEqual(IDENTITY_LINE, "You are a personal assistant running inside BeamClaw.")
  })

  it("defaults to full mode", () => {
    const { mode: _mode, ...rest } = fullInput
    assert.strictEqual(buildSystemPrompt(rest), buildSystemPrompt(fullInput))
  })
})

describe("runtimeLine", () => {
  it("renders the one-line runtime summary", () => {
    assert.strictEqual(
      runtimeLine(runtime),
      "Runtime: agent=main | host=box | os=linux (x64) | node=v24.21.0 | model=anthropic/claude-sonnet-4-5 | channel=telegram | thinking=low"
    )
  })

  it("omits an unknown channel and shows thinking=off by default", () => {
    const { channel: _c, thinking: _t, ...bare } = runtime
    assert.strictEqual(
      runtimeLine(bare),
      "Runtime: agent=main | host=box | os=linux (x64) | node=v24.21.0 | model=anthropic/claude-sonnet-4-5 | thinking=off"
    )
  })
})

describe("prompt from a real workspace", () => {
  it.effect("carries the seeded bootstrap files into Project Context in load order", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "beamclaw-prompt-" })
      yield* ensureWorkspace(dir)
      const files = yield* loadBootstrapFiles(dir)
      const prompt = buildSystemPrompt({ workspaceDir: dir, contextFiles: files, runtime })
      assert.include(prompt, SEED_TEMPLATES["SOUL.md"].trimEnd())
      assert.include(prompt, "SOUL.md describes your persona")
      assertIncreasing(positions(prompt, [
        "## AGENTS.md\n",
        "## SOUL.md\n",
        "## TOOLS.md\n",
        "## IDENTITY.md\n",
        "## USER.md\n",
        "## HEARTBEAT.md\n",
        "## BOOTSTRAP.md\n",
        "## Silent Replies"
      ]))

      const sub = yield* loadBootstrapFiles(dir, { sessionKind: "subagent" })
      const subPrompt = buildSystemPrompt({ mode: "minimal", workspaceDir: dir, contextFiles: sub, runtime })
      assert.include(subPrompt, "## AGENTS.md\n")
      assert.notInclude(subPrompt, "## SOUL.md\n")
      assert.notInclude(subPrompt, "SOUL.md describes your persona")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
