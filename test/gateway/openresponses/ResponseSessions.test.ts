/**
 * The bounded response → session map behind previous_response_id: scope
 * matching (agent, user, session-key header) and least-recently-used eviction.
 */
import { assert, describe, it } from "@effect/vitest"
import { DEFAULT_CAPACITY, type ResponseScope, ResponseSessions } from "../../../src/gateway/openresponses/ResponseSessions.ts"

const scope: ResponseScope = { agentId: "main", user: "ada", headerKey: undefined }
const session = (key: string, of: ResponseScope = scope) => ({ ...of, sessionKey: key, sessionAgentId: of.agentId })

describe("ResponseSessions", () => {
  it("finds a response's session only within its scope", () => {
    const map = new ResponseSessions()
    map.remember("resp_1", session("agent:main:openresponses-user:ada"))
    assert.strictEqual(map.lookup("resp_1", scope)?.sessionKey, "agent:main:openresponses-user:ada")
    assert.isUndefined(map.lookup("resp_1", { ...scope, agentId: "work" }))
    assert.isUndefined(map.lookup("resp_1", { ...scope, user: "bob" }))
    assert.isUndefined(map.lookup("resp_1", { ...scope, user: undefined }))
    assert.isUndefined(map.lookup("resp_1", { ...scope, headerKey: "thread-1" }))
    assert.isUndefined(map.lookup("resp_unknown", scope))
  })

  it("keeps at most its capacity, dropping the least recently used", () => {
    assert.strictEqual(new ResponseSessions().capacity, DEFAULT_CAPACITY)
    const map = new ResponseSessions(2)
    map.remember("a", session("s-a"))
    map.remember("b", session("s-b"))
    // A hit counts as a use, so "b" is now the oldest.
    assert.strictEqual(map.lookup("a", scope)?.sessionKey, "s-a")
    map.remember("c", session("s-c"))
    assert.strictEqual(map.size, 2)
    assert.isUndefined(map.lookup("b", scope))
    assert.strictEqual(map.lookup("a", scope)?.sessionKey, "s-a")
    assert.strictEqual(map.lookup("c", scope)?.sessionKey, "s-c")
  })

  it("bounds a large run of responses", () => {
    const map = new ResponseSessions(100)
    for (let i = 0; i < 1000; i++) map.remember(`resp_${i}`, session(`s-${i}`))
    assert.strictEqual(map.size, 100)
    assert.isUndefined(map.lookup("resp_899", scope))
    assert.strictEqual(map.lookup("resp_900", scope)?.sessionKey, "s-900")
  })
})
