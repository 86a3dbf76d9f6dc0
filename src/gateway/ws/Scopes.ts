/**
 * Roles, operator scopes and the scope each method needs, as OpenClaw's
 * `method-scopes.ts`: admin allows everything, read is satisfied by write,
 * any other scope must be held, and an unlisted method needs admin.
 */
export const OPERATOR_SCOPES = [
  "operator.read",
  "operator.write",
  "operator.admin",
  "operator.approvals",
  "operator.questions",
  "operator.pairing",
  "operator.talk",
  "operator.talk.secrets"
] as const
export type OperatorScope = typeof OPERATOR_SCOPES[number]

export type Role = "operator" | "node"

export const parseRole = (raw: string | undefined): Role | undefined =>
  raw === undefined || raw === "operator" ? "operator" : raw === "node" ? "node" : undefined

const READ: ReadonlyArray<string> = [
  "health", "logs.tail", "channels.status", "status", "models.list", "agents.list", "sessions.list", "sessions.get",
  "sessions.preview", "sessions.messages.subscribe", "sessions.messages.unsubscribe", "system-presence", "last-heartbeat", "chat.history", "config.get", "config.schema.lookup"
]
const WRITE: ReadonlyArray<string> = ["send", "agent", "agent.wait", "chat.send", "chat.abort"]
const ADMIN: ReadonlyArray<string> = ["sessions.reset", "sessions.delete", "sessions.compact", "chat.inject"]
const PAIRING: ReadonlyArray<string> = ["device.pair.list", "device.pair.approve", "device.pair.reject", "device.pair.remove", "device.token.rotate", "device.token.revoke"]

const ADMIN_PREFIXES = ["config.", "exec.approvals.", "wizard.", "update."]

// sessions.patch is a write when it only touches these (OpenClaw's session-method-scopes.ts), else admin.
const PATCH_WRITE_FIELDS: ReadonlySet<string> = new Set([
  "key", "agentId", "expectedSessionId", "expectedLifecycleRevision", "expectedPermissionMode", "expectedMarkedUnreadAt",
  "label", "autoLabel", "icon", "color", "category", "boardFace", "boardPresentation", "pinned", "archived", "unread",
  "model", "agentRuntime", "thinkingLevel", "fastMode", "permissionMode"
])

const patchScope = (params: unknown): OperatorScope => {
  if (typeof params !== "object" || params === null || Array.isArray(params)) return "operator.write"
  if (Reflect.get(params, "permissionMode") === "full") return "operator.admin"
  return Object.keys(params).every((key) => PATCH_WRITE_FIELDS.has(key)) ? "operator.write" : "operator.admin"
}

/**
 * The scope a method needs: the params-dependent methods, then the core table
 * (config.get is read), then reserved prefixes, else admin.
 */
export const requiredScope = (method: string, params?: unknown): OperatorScope => {
  if (method === "sessions.patch") return patchScope(params)
  if (READ.includes(method)) return "operator.read"
  if (WRITE.includes(method)) return "operator.write"
  if (ADMIN.includes(method)) return "operator.admin"
  if (PAIRING.includes(method)) return "operator.pairing"
  if (ADMIN_PREFIXES.some((prefix) => method.startsWith(prefix))) return "operator.admin"
  return "operator.admin"
}

/** The scope that is missing for `method`, or undefined when the held scopes allow it. */
export const missingScope = (method: string, scopes: ReadonlyArray<string>, params?: unknown): OperatorScope | undefined => {
  if (scopes.includes("operator.admin")) return undefined
  const required = requiredScope(method, params)
  if (scopes.includes(required)) return undefined
  if (required === "operator.read" && scopes.includes("operator.write")) return undefined
  return required
}

/** Events that need a scope before a client receives them (transport events go to everyone). */
export const eventAllowed = (event: string, role: Role, scopes: ReadonlyArray<string>): boolean => {
  if (event === "chat" || event === "agent" || event === "sessions.changed") {
    return role === "operator" && (scopes.includes("operator.admin") || scopes.includes("operator.read") || scopes.includes("operator.write"))
  }
  if (event.startsWith("device.pair.")) return role === "operator" && (scopes.includes("operator.admin") || scopes.includes("operator.pairing"))
  return true
}
