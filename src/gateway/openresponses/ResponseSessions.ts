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
 */

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

const sameScope = (a: ResponseScope, b: ResponseScope): boolean =>
  a.agentId === b.agentId && a.user === b.user && a.headerKey === b.headerKey

export class ResponseSessions {
  readonly capacity: number
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, ResponseSession>()

  constructor(capacity: number = DEFAULT_CAPACITY) {
    this.capacity = Math.max(1, Math.floor(capacity))
  }

  get size(): number {
    return this.entries.size
  }

  remember(responseId: string, session: ResponseSession): void {
    this.entries.delete(responseId)
    this.entries.set(responseId, session)
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done === true) break
      this.entries.delete(oldest.value)
    }
  }

  /** The session of `responseId` if it is known and in `scope`; a hit counts as a use. */
  lookup(responseId: string, scope: ResponseScope): ResponseSession | undefined {
    const session = this.entries.get(responseId)
    if (session === undefined || !sameScope(session, scope)) return undefined
    this.entries.delete(responseId)
    this.entries.set(responseId, session)
    return session
  }
}
