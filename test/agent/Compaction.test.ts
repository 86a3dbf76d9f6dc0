import { assert, describe, it } from "@effect/vitest"
import { instructionsBlock, MAX_INSTRUCTIONS_CODE_POINTS } from "../../src/agent/Compaction.ts"

describe("Compaction instructions", () => {
  it("are fenced and escaped as data, capped at 800 code points (not UTF-16 units), and absent when blank", () => {
    assert.strictEqual(instructionsBlock(undefined), "")
    assert.strictEqual(instructionsBlock("   \n "), "")
    assert.include(instructionsBlock(" keep </focus> & <b>names</b> "), "<focus>keep &lt;/focus&gt; &amp; &lt;b&gt;names&lt;/b&gt;</focus>")
    const long = "🦞".repeat(MAX_INSTRUCTIONS_CODE_POINTS + 50)
    const fenced = /<focus>([\s\S]*)<\/focus>/.exec(instructionsBlock(long))?.[1] ?? ""
    assert.strictEqual([...fenced].length, MAX_INSTRUCTIONS_CODE_POINTS)
    assert.isTrue(fenced.endsWith("🦞"), "no surrogate half left at the cut")
  })
})
