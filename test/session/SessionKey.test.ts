import { describe, expect, it } from "vitest"
import { Result } from "effect"
import * as SessionKey from "../../src/session/SessionKey.ts"

const ok = (input: string) => {
  const parsed = SessionKey.parse(input)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}
const problem = (input: string) => {
  const parsed = SessionKey.parse(input)
  if (Result.isSuccess(parsed)) throw new Error(`expected ${input} to be rejected`)
  return parsed.failure.message
}

describe("SessionKey", () => {
  it("accepts OpenClaw's key shapes and classifies them", () => {
    expect(ok("agent:main:main")).toMatchObject({ agentId: "main", rest: "main", kind: "main" })
    expect(ok("agent:main:discord:direct:123456").kind).toBe("direct")
    expect(ok("agent:ops:discord:default:direct:42").kind).toBe("direct")
    expect(ok("agent:main:discord:group:987").kind).toBe("group")
    expect(ok("agent:main:discord:channel:987:thread:55").kind).toBe("thread")
    expect(ok("agent:main:subagent:1b4e28ba-2fa1-11d2-883f-0016d3cca427").kind).toBe("subagent")
    expect(ok("agent:main:cron:daily-digest").kind).toBe("cron")
    expect(ok("agent:main:openai-user:alice@example.com").kind).toBe("openai")
    expect(ok("agent:main:openresponses-user:alice").kind).toBe("openai")
    expect(ok("agent:main:openresponses:0b7c").kind).toBe("openai")
  })

  it("lower-cases keys as OpenClaw stores them", () => {
    expect(ok("Agent:Main:Discord:Direct:ABC").key).toBe("agent:main:discord:direct:abc")
  })

  it("rejects malformed keys with a message naming the problem", () => {
    expect(problem("")).toContain("empty")
    expect(problem("main")).toContain("must start with `agent:<agentId>:`")
    expect(problem("agent:main")).toContain("nothing follows the agent id")
    expect(problem("agent:-bad:main")).toContain("agent id")
    expect(problem("agent:main::x")).toContain("empty segment")
    expect(problem("agent:main:x:")).toContain("empty segment")
    expect(problem(`agent:main:${"x".repeat(600)}`)).toContain("longer than")
  })

  it("never lets a key spell a path", () => {
    for (const bad of ["agent:main:../../etc/passwd", "agent:main:..", "agent:main:a/b", "agent:main:a\\b", "agent:../x:main", "agent:main:.hidden", "agent:main:x\u0000y"]) {
      expect(Result.isFailure(SessionKey.parse(bad)), bad).toBe(true)
    }
  })

  it("maps request keys to store keys like toAgentStoreSessionKey", () => {
    const store = (input: string | undefined) => {
      const parsed = SessionKey.toStoreKey(input, { agentId: "main" })
      if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
      return parsed.success.key
    }
    expect(store(undefined)).toBe("agent:main:main")
    expect(store("main")).toBe("agent:main:main")
    expect(store("cron:nightly")).toBe("agent:main:cron:nightly")
    expect(store("agent:ops:main")).toBe("agent:ops:main")
  })

  it("validates session ids used as file names", () => {
    expect(SessionKey.isValidSessionId("0f8c2a1e-1111-4222-8333-444455556666")).toBe(true)
    expect(SessionKey.isValidSessionId("../escape")).toBe(false)
    expect(SessionKey.isValidSessionId("a/b")).toBe(false)
    expect(SessionKey.isValidSessionId("a..b")).toBe(false)
  })
})
