import { assert, describe, it } from "@effect/vitest"
import { type ChunkPart, chunkDiscordText, chunkDiscordTextDetailed } from "../../src/channels/Chunker.ts"

// ---------------------------------------------------------------------------
// Helpers the invariants are stated with (written independently of the chunker)
// ---------------------------------------------------------------------------

const FENCE = /^( {0,3})(`{3,}|~{3,})/

/** The fence open at the end of `text`, read line by line as a Markdown reader would. */
const openFenceAtEnd = (text: string): string | undefined => {
  let open: { char: string; length: number } | undefined
  for (const line of text.split("\n")) {
    const match = FENCE.exec(line)
    if (match === null) continue
    const marker = match[2] ?? ""
    const fence = { char: marker[0] ?? "", length: marker.length }
    if (open === undefined) open = fence
    else if (fence.char === open.char && fence.length >= open.length) open = undefined
  }
  return open === undefined ? undefined : open.char.repeat(open.length)
}

const hasLoneSurrogate = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true
      i++
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return true
    }
  }
  return false
}

const withoutWhitespace = (text: string) => text.replace(/\s+/g, "")
const lineCount = (text: string) => text.split("\n").length

/** The source text back from the parts: contents joined as they were split. */
const reassemble = (parts: ReadonlyArray<ChunkPart>) => parts.map((part, i) => (i === 0 ? "" : part.joinedWith) + part.content).join("")

const checkInvariants = (text: string, maxChars: number, maxLines: number, label: string) => {
  const parts = chunkDiscordTextDetailed(text, { maxChars, maxLines })
  const fitsAsIs = text.length <= maxChars && lineCount(text) <= maxLines && text.trim() !== ""
  if (fitsAsIs) {
    assert.strictEqual(parts.length, 1, label)
    assert.strictEqual(parts[0]?.text, text, label)
    return parts
  }
  parts.forEach((part, i) => {
    const where = `${label} part ${i}`
    assert.isAtMost(part.text.length, maxChars, `${where}: over the limit`)
    assert.isFalse(hasLoneSurrogate(part.text), `${where}: lone surrogate`)
    assert.notStrictEqual(part.text.trim(), "", `${where}: whitespace only`)
    assert.isUndefined(openFenceAtEnd(part.text), `${where}: fence left open:\n${part.text}`)
    assert.isAtMost(lineCount(part.text), Math.max(maxLines, 3), `${where}: too many lines`)
    const rebuilt = [part.reopened, part.content, part.closed].filter((piece) => piece !== undefined).join("\n")
    assert.strictEqual(part.text, rebuilt, `${where}: text is not reopened + content + closed`)
  })
  assert.strictEqual(withoutWhitespace(reassemble(parts)), withoutWhitespace(text), `${label}: content lost or reordered`)
  return parts
}

// A small deterministic PRNG, so a failure names a seed that reproduces it.
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const generate = (random: () => number): string => {
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)] as A
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1))
  const word = () => Array.from({ length: int(1, 12) }, () => pick([..."abcdefghijklmnopqrstuvwxyz"])).join("")
  const sentence = () => Array.from({ length: int(1, 30) }, word).join(pick([" ", " ", "  ", "\t"]))
  const lines: Array<string> = []
  const blocks = int(1, 14)
  for (let b = 0; b < blocks; b++) {
    switch (int(0, 9)) {
      case 0:
      case 1:
        lines.push(sentence())
        break
      case 2: // a long line of words
        lines.push(Array.from({ length: int(50, 600) }, word).join(" "))
        break
      case 3: // one unbreakable word
        lines.push("x".repeat(int(100, 4500)))
        break
      case 4: // CJK prose, no spaces
        lines.push(Array.from({ length: int(5, 400) }, () => pick(["你好世界", "这是测试", "日本語の文", "한국어"]) + pick(["。", "，", "！", "？", "、", ""])).join(""))
        break
      case 5: // emoji, astral code points
        lines.push(Array.from({ length: int(1, 1500) }, () => pick(["😀", "👍🏽", "🧪", "a", " "])).join(""))
        break
      case 6: { // a fenced block, sometimes unclosed, with stray markers inside
        const marker = pick(["```", "````", "~~~", "~~~~~"])
        const indent = pick(["", "", " ", "   "])
        lines.push(`${indent}${marker}${pick(["", "ts", "python", "json", " shell script"])}`)
        const body = int(0, 60)
        for (let i = 0; i < body; i++) {
          lines.push(pick([
            sentence(),
            `    ${sentence()}`,
            "",
            marker[0] === "`" ? "~~~" : "```",
            `const value${i} = ${JSON.stringify(sentence())}`,
            " ".repeat(int(0, 300)) + "y".repeat(int(0, 3000))
          ]))
        }
        if (random() < 0.85) lines.push(`${indent}${marker}`)
        break
      }
      case 7:
        lines.push(...Array.from({ length: int(1, 5) }, () => pick(["", "   ", "\t"])))
        break
      case 8: // text whose split points are close to fence-looking runs
        lines.push(`${"z".repeat(int(1, 1990))} ${pick(["```", "~~~", "   ```js"])}${sentence()}`)
        break
      default:
        lines.push(`${sentence()}\r`)
    }
  }
  return lines.join("\n")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("Chunker", () => {
  it("sends short text as it is, and nothing for blank text", () => {
    assert.deepStrictEqual(chunkDiscordText("hello"), ["hello"])
    assert.deepStrictEqual(chunkDiscordText("a\n```ts\nx\n```"), ["a\n```ts\nx\n```"])
    assert.deepStrictEqual(chunkDiscordText(""), [])
    assert.deepStrictEqual(chunkDiscordText("  \n\t\n "), [])
  })

  it("splits at 2000 characters and 17 lines by default", () => {
    assert.deepStrictEqual(chunkDiscordText("a".repeat(2000)).length, 1)
    assert.deepStrictEqual(chunkDiscordText("a".repeat(2001)).map((c) => c.length), [2000, 1])
    const seventeen = Array.from({ length: 17 }, (_, i) => `line ${i}`).join("\n")
    assert.deepStrictEqual(chunkDiscordText(seventeen), [seventeen])
    const eighteen = `${seventeen}\nline 17`
    assert.deepStrictEqual(chunkDiscordText(eighteen), [seventeen, "line 17"])
  })

  it("closes a code fence at a split and reopens it with its language", () => {
    const code = Array.from({ length: 30 }, (_, i) => `print(${i})`).join("\n")
    const chunks = chunkDiscordText(`Here you go:\n\`\`\`python\n${code}\n\`\`\`\nDone.`)
    assert.isAbove(chunks.length, 1)
    assert.isTrue(chunks[0]?.startsWith("Here you go:\n```python\nprint(0)"))
    assert.isTrue(chunks[0]?.endsWith("\n```"))
    for (const chunk of chunks.slice(1, -1)) {
      assert.isTrue(chunk.startsWith("```python\n"), chunk)
      assert.isTrue(chunk.endsWith("\n```"), chunk)
    }
    assert.isTrue(chunks.at(-1)?.endsWith("```\nDone."))
    assert.strictEqual(chunks.join("\n").match(/print\(\d+\)/g)?.length, 30)
  })

  it("tracks ~~~ fences and marker lengths: a shorter or different marker does not close", () => {
    const inner = Array.from({ length: 20 }, (_, i) => (i === 5 ? "```" : i === 9 ? "~~~" : `row ${i}`)).join("\n")
    const chunks = chunkDiscordText(`~~~~\n${inner}\n~~~~`, { maxLines: 8 })
    assert.isAbove(chunks.length, 2)
    for (const chunk of chunks) {
      assert.isTrue(chunk.startsWith("~~~~"), chunk)
      assert.isTrue(chunk.endsWith("~~~~"), chunk)
    }
  })

  it("splits a long line at the last whitespace, the space going with the rest", () => {
    const words = Array.from({ length: 500 }, (_, i) => `w${i}`).join(" ")
    const chunks = chunkDiscordText(words, { maxChars: 100 })
    for (const [i, chunk] of chunks.entries()) {
      assert.isAtMost(chunk.length, 100)
      assert.isFalse(/\s$/.test(chunk), `chunk ${i} ends with whitespace`)
      if (i > 0) assert.isTrue(chunk.startsWith(" "), `chunk ${i} should start with the separator`)
    }
    assert.strictEqual(chunks.join(""), words)
  })

  it("splits CJK text after its punctuation when there is no whitespace", () => {
    const text = "这是一个很长的句子，没有空格。".repeat(200)
    const chunks = chunkDiscordText(text, { maxChars: 100 })
    for (const chunk of chunks.slice(0, -1)) assert.isTrue(/[，。]$/.test(chunk), chunk)
    assert.strictEqual(chunks.join(""), text)
  })

  it("splits hard between code points, never inside a surrogate pair", () => {
    const text = "😀".repeat(1500)
    const chunks = chunkDiscordText(text, { maxChars: 2001 })
    assert.deepStrictEqual(chunks.map((c) => c.length), [2000, 1000])
    assert.isFalse(chunks.some(hasLoneSurrogate))
    // One code point is the least a message can carry, even under a 1-unit limit.
    assert.deepStrictEqual(chunkDiscordText("😀a", { maxChars: 1 }), ["😀", "a"])
  })

  it("splits a long line inside a fence exactly at the limit, keeping its whitespace", () => {
    const line = "ab  ".repeat(100)
    const chunks = chunkDiscordTextDetailed(`\`\`\`\n${line}\n\`\`\``, { maxChars: 60 })
    const contents = chunks.map((part) => part.content)
    assert.strictEqual(contents.join("").replace(/^```\n/, "").replace(/\n```$/, ""), line)
    for (const part of chunks) assert.strictEqual(part.text.length <= 60, true)
    assert.isTrue(chunks.slice(1).every((part) => part.reopened === "```"))
  })

  it("never leaves an empty code block at the end of a message", () => {
    const chunks = chunkDiscordText(`Intro paragraph.\n\`\`\`js\n${"x".repeat(3000)}\n\`\`\``)
    assert.isFalse(chunks.some((chunk) => /```js\n```$/.test(chunk) || chunk === "```\n```"), JSON.stringify(chunks.map((c) => c.slice(-20))))
    assert.strictEqual(chunks[0], "Intro paragraph.")
    assert.isTrue(chunks[1]?.startsWith("```js\nxxx"))
  })

  it("does not let a split line's remainder start with a fence marker", () => {
    const text = `${"z".repeat(1990)} \`\`\`${"x".repeat(200)}\nafter`
    const parts = chunkDiscordTextDetailed(text)
    for (const part of parts) assert.isUndefined(openFenceAtEnd(part.content), part.content.slice(0, 40))
    assert.isTrue(parts.every((part) => part.reopened === undefined && part.closed === undefined))
  })

  it("closes a fence the text never closed, once it has to split", () => {
    const chunks = chunkDiscordText(`\`\`\`\n${Array.from({ length: 40 }, (_, i) => `l${i}`).join("\n")}`)
    assert.isAbove(chunks.length, 1)
    for (const chunk of chunks) assert.isUndefined(openFenceAtEnd(chunk))
  })

  it("treats a bad option as its default", () => {
    assert.deepStrictEqual(chunkDiscordText("a".repeat(2001), { maxChars: Number.NaN }).length, 2)
    assert.deepStrictEqual(chunkDiscordText("a\nb\nc", { maxLines: 0 }), ["a", "b", "c"])
  })

  it("keeps its invariants over many generated texts", () => {
    const limits: ReadonlyArray<readonly [number, number]> = [[2000, 17], [333, 5], [100, 3], [60, 1], [40, 100]]
    for (let seed = 1; seed <= 200; seed++) {
      const text = generate(mulberry32(seed))
      for (const [maxChars, maxLines] of limits) checkInvariants(text, maxChars, maxLines, `seed ${seed} limit ${maxChars}/${maxLines}`)
    }
  })

  it("keeps the length and surrogate invariants even at tiny limits", () => {
    for (let seed = 1000; seed < 1030; seed++) {
      const text = generate(mulberry32(seed))
      for (const maxChars of [2, 3, 7, 11]) {
        for (const chunk of chunkDiscordText(text, { maxChars, maxLines: 2 })) {
          assert.isAtMost(chunk.length, maxChars, `seed ${seed} limit ${maxChars}`)
          assert.isFalse(hasLoneSurrogate(chunk), `seed ${seed} limit ${maxChars}`)
        }
      }
    }
  })
})
