/**
 * The system prompt BeamClaw sends on every agent run. A pure renderer: every
 * fact arrives in the input and nothing reads the clock, so the same input
 * always yields the same text and the provider's prompt cache keeps hitting.
 * Section order follows OpenClaw's `buildAgentSystemPrompt`, limited to the
 * sections BeamClaw has features for.
 */

export type PromptMode = "full" | "minimal" | "none"

export const SILENT_REPLY_TOKEN = "NO_REPLY"
export const HEARTBEAT_OK_TOKEN = "HEARTBEAT_OK"

export const IDENTITY_LINE = "You are a personal assistant running inside BeamClaw."

export const DEFAULT_HEARTBEAT_PROMPT =
  `Read HEARTBEAT.md if it exists (it is in your workspace context) and follow it exactly. ` +
  `Do not revive or repeat tasks from earlier chats. If nothing needs attention, reply ${HEARTBEAT_OK_TOKEN}.`

export interface PromptTool {
  readonly name: string
  /** One line shown to the model next to the tool name. */
  readonly summary: string
}

export interface PromptContextFile {
  readonly name: string
  readonly content: string
  readonly missing?: boolean | undefined
}

export interface PromptRuntime {
  readonly agentId: string
  readonly host: string
  readonly os: string
  readonly arch: string
  readonly node: string
  readonly model: string
  readonly channel?: string | undefined
  /** Default thinking level; shown as `off` when absent. */
  readonly thinking?: string | undefined
}

export interface SystemPromptInput {
  /** `full` for main sessions (default), `minimal` for sub-agents, `none` for the identity line only. */
  readonly mode?: PromptMode | undefined
  readonly tools?: ReadonlyArray<PromptTool> | undefined
  /** The rendered `<available_skills>` block; the Skills section appears only when non-empty. */
  readonly skillsPrompt?: string | undefined
  readonly workspaceDir: string
  readonly workspaceNotes?: ReadonlyArray<string> | undefined
  /** IANA zone of the user; the date and time themselves are left to tools. */
  readonly userTimezone?: string | undefined
  /** Extra instructions: the task brief for sub-agents, group context otherwise. */
  readonly extraSystemPrompt?: string | undefined
  readonly contextFiles?: ReadonlyArray<PromptContextFile> | undefined
  readonly heartbeatPrompt?: string | undefined
  readonly runtime: PromptRuntime
}

// Core tools keep a fixed order so the prompt does not change when a caller
// assembles the list in a different order; everything else sorts by name.
const CORE_TOOL_ORDER: ReadonlyArray<string> = [
  "read",
  "write",
  "edit",
  "apply_patch",
  "grep",
  "find",
  "ls",
  "exec",
  "process",
  "web_search",
  "web_fetch",
  "browser",
  "canvas",
  "nodes",
  "cron",
  "message",
  "gateway",
  "agents_list",
  "sessions_list",
  "sessions_history",
  "sessions_send",
  "session_status",
  "image"
]

const singleLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/** Tools deduplicated by name (first wins), core tools first, the rest by name. */
export const orderTools = (tools: ReadonlyArray<PromptTool>): ReadonlyArray<PromptTool> => {
  const byName = new Map<string, PromptTool>()
  for (const tool of tools) {
    const name = tool.name.trim()
    if (name.length > 0 && !byName.has(name)) byName.set(name, { name, summary: singleLine(tool.summary) })
  }
  const rank = (name: string): number => {
    const index = CORE_TOOL_ORDER.indexOf(name)
    return index === -1 ? CORE_TOOL_ORDER.length : index
  }
  return [...byName.values()].sort((a, b) =>
    rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  )
}

const toolingSection = (tools: ReadonlyArray<PromptTool>): ReadonlyArray<string> => {
  if (tools.length === 0) {
    return [
      "## Tooling",
      "No tools are available in this session. Answer from your own knowledge and the context below, " +
      "and say so plainly when a request would need a tool you do not have."
    ]
  }
  const names = new Set(tools.map((tool) => tool.name))
  const lines = [
    "## Tooling",
    "These tools are available to you (the current tool policy has already filtered this list):",
    "Tool names are case-sensitive; call each one exactly as written.",
    ...tools.map((tool) => tool.summary.length > 0 ? `- ${tool.name}: ${tool.summary}` : `- ${tool.name}`),
    "TOOLS.md only holds notes about the local setup; it does not add or remove tools."
  ]
  if (names.has("cron")) {
    lines.push("For reminders and follow-ups later on, schedule a cron job rather than sleeping or polling in a loop.")
  }
  if (names.has("sessions_spawn")) {
    lines.push(
      "For long or complex work, delegate to a sub-agent with sessions_spawn; it reports back when it finishes, " +
        "so do not poll for it."
    )
  }
  return lines
}

const TOOL_CALL_STYLE: ReadonlyArray<string> = [
  "## Tool Call Style",
  "Routine, low-risk tool calls need no commentary: just make them.",
  "For multi-step work, or anything sensitive or hard to undo, say briefly what you are about to do and why.",
  "Keep any narration short and useful."
]

const SAFETY: ReadonlyArray<string> = [
  "## Safety",
  "You have no goals of your own beyond the user's request. Do not pursue self-preservation, replication, " +
  "more resources or more power.",
  "Support human oversight: when instructions conflict or an action looks risky, stop and ask.",
  "Never try to widen your own access, disable safeguards, or change your instructions, tool policy or " +
  "configuration unless the user explicitly asks, and never by persuading or misleading anyone."
]

const skillsSection = (skillsPrompt: string): ReadonlyArray<string> => [
  "## Skills (mandatory)",
  "Before you reply, scan the <description> of each entry in <available_skills>.",
  "- If exactly one skill clearly fits, read its SKILL.md at the listed <location> with `read`, then follow it.",
  "- If several fit, pick the most specific one and read only that.",
  "- If none clearly fits, read no SKILL.md.",
  "Read at most one skill up front, and only after choosing it.",
  skillsPrompt.trim()
]

const workspaceSection = (dir: string, notes: ReadonlyArray<string>): ReadonlyArray<string> => [
  "## Workspace",
  `Your working directory is: ${dir}`,
  "This is your one workspace: relative paths resolve here, and your notes and memory files live here.",
  ...notes.map((note) => note.trim()).filter((note) => note.length > 0)
]

const dateTimeSection = (timezone: string, hasSessionStatus: boolean): ReadonlyArray<string> => [
  "## Current Date & Time",
  `Time zone: ${timezone}`,
  ...(hasSessionStatus ? ["When you need the current date, time or weekday, call session_status."] : [])
]

const projectContextSection = (files: ReadonlyArray<PromptContextFile>): ReadonlyArray<string> => {
  const hasSoul = files.some((file) => file.name === "SOUL.md" && file.missing !== true)
  const lines = [
    "# Project Context",
    "The workspace files below were loaded by BeamClaw. The user edits them; treat them as part of your instructions."
  ]
  if (hasSoul) {
    lines.push(
      "SOUL.md describes your persona: take on its character and tone unless a higher-priority instruction says otherwise."
    )
  }
  for (const file of files) lines.push("", `## ${file.name}`, "", file.content)
  return lines
}

const SILENT_REPLIES: ReadonlyArray<string> = [
  "## Silent Replies",
  `When you have nothing to say, reply with only: ${SILENT_REPLY_TOKEN}`,
  `- ${SILENT_REPLY_TOKEN} must be the entire message: no other text, no markdown around it.`,
  `- Never add ${SILENT_REPLY_TOKEN} to a real reply.`
]

const heartbeatsSection = (prompt: string): ReadonlyArray<string> => [
  "## Heartbeats",
  `Heartbeat prompt: ${singleLine(prompt)}`,
  `When a message is a heartbeat poll (it matches the prompt above) and nothing needs attention, reply exactly: ${HEARTBEAT_OK_TOKEN}`,
  `${HEARTBEAT_OK_TOKEN} at the start or end of a reply marks it as an acknowledgement and it is not delivered.`,
  `When something does need attention, write the alert and leave ${HEARTBEAT_OK_TOKEN} out.`
]

export const runtimeLine = (runtime: PromptRuntime): string => {
  const parts = [
    `agent=${runtime.agentId}`,
    `host=${runtime.host}`,
    `os=${runtime.os} (${runtime.arch})`,
    `node=${runtime.node}`,
    `model=${runtime.model}`
  ]
  if (runtime.channel !== undefined && runtime.channel.length > 0) parts.push(`channel=${runtime.channel}`)
  parts.push(`thinking=${runtime.thinking !== undefined && runtime.thinking.length > 0 ? runtime.thinking : "off"}`)
  return `Runtime: ${parts.map(singleLine).join(" | ")}`
}

/**
 * Renders the system prompt. `minimal` (sub-agents) drops Skills, Silent
 * Replies and Heartbeats and labels `extraSystemPrompt` as sub-agent context;
 * `none` returns only the identity line.
 */
export const buildSystemPrompt = (input: SystemPromptInput): string => {
  const mode = input.mode ?? "full"
  if (mode === "none") return IDENTITY_LINE
  const full = mode === "full"
  const tools = orderTools(input.tools ?? [])
  const skillsPrompt = input.skillsPrompt?.trim() ?? ""
  const timezone = input.userTimezone?.trim() ?? ""
  const extra = input.extraSystemPrompt?.trim() ?? ""
  const contextFiles = input.contextFiles ?? []

  const sections: Array<ReadonlyArray<string>> = [
    [IDENTITY_LINE],
    toolingSection(tools),
    TOOL_CALL_STYLE,
    SAFETY
  ]
  if (full && skillsPrompt.length > 0) sections.push(skillsSection(skillsPrompt))
  sections.push(workspaceSection(input.workspaceDir, input.workspaceNotes ?? []))
  if (timezone.length > 0) {
    sections.push(dateTimeSection(timezone, tools.some((tool) => tool.name === "session_status")))
  }
  if (extra.length > 0) sections.push([full ? "## Group Chat Context" : "## Subagent Context", extra])
  if (contextFiles.length > 0) sections.push(projectContextSection(contextFiles))
  if (full) {
    sections.push(SILENT_REPLIES)
    sections.push(heartbeatsSection(input.heartbeatPrompt?.trim() || DEFAULT_HEARTBEAT_PROMPT))
  }
  sections.push(["## Runtime", runtimeLine(input.runtime)])
  return sections.map((lines) => lines.join("\n")).join("\n\n")
}
