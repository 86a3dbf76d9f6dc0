/**
 * Which session each /v1/responses response ran in, so a later request with
 * `previous_response_id` continues it (OpenClaw's response-session map). A
 * continuation is honoured only within the scope of the response it names:
 * the same agent, the same `user` and the same session-key header (OpenClaw
 * also matches the auth subject, which is the same for every shared-secret
 * caller). Anything else, like an id this gateway never issued or has
 * forgotten, is not an error: the request gets the session it would have got
 * without the field, as in OpenClaw. The map is held in memory, bounded, the
 * least recently used entry going first, and does not survive a restart.
 * It keeps a digest of each scope, not the `user` as sent (a body may carry
 * megabytes of it).
 */
import { createHash } from "node:crypto"

/** What must match for a response's session to be reused. */
export interface ResponseScope {
  /** The agent the request selected (model or agent header). */
  readonly agentId: string
  /** The request's `user`, trimmed. */
  readonly user: string | undefined
  /** The session-key header as sent, trimmed. */
  readonly headerKey: string | undefined
}

export interface ResponseSession extends ResponseScope {
  readonly sessionKey: string
  /** The agent whose session it is (a session-key header may name another agent than the selected one). */
  readonly sessionAgentId: string
}

export const DEFAULT_CAPACITY = 10_000

const scopeDigest = (scope: ResponseScope): string =>
  createHash("sha256").update(JSON.stringify([scope.agentId, scope.user ?? null, scope.headerKey ?? null])).digest("base64")

interface Remembered {
  readonly scope: string
  readonly sessionKey: string
  readonly sessionAgentId: string
}

export class ResponseSessions {
  readonly capacity: number
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, Remembered>()

  constructor(capacity: number = DEFAULT_CAPACITY) {
    this.capacity = Math.max(1, Math.floor(capacity))
  }

  get size(): number {
    return this.entries.size
  }

  remember(responseId: string, session: ResponseSession): void {
    this.entries.delete(responseId)
    this.entries.set(responseId, { scope: scopeDigest(session), sessionKey: session.sessionKey, sessionAgentId: session.sessionAgentId })
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done === true) break
      this.entries.delete(oldest.value)
    }
  }

  /** The session of `responseId` if it is known and in `scope`; a hit counts as a use. */
  lookup(responseId: string, scope: ResponseScope): ResponseSession | undefined {
    const remembered = this.entries.get(responseId)
    if (remembered === undefined || remembered.scope !== scopeDigest(scope)) return undefined
    this.entries.delete(responseId)
    this.entries.set(responseId, remembered)
    return { ...scope, sessionKey: remembered.sessionKey, sessionAgentId: remembered.sessionAgentId }
  }
}
