/**
 * The PDF reader in its worker thread (PdfText.ts, PdfWorker.ts), run from
 * source: the text of the first pages, a clear failure for what is not a PDF,
 * an event loop that keeps turning while a large PDF is read, a worker that
 * is gone after a read that took too long, and memory limits that hold for
 * hostile PDFs (compressed streams that inflate without end, text runs by
 * the million).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import { extractPdfText, PdfNotRead } from "../../../src/gateway/openresponses/PdfText.ts"
import { makeInflatingPdf, makePdf } from "../../support/Pdf.ts"

const bigPdf = () => {
  const lines = Array.from({ length: 20_000 }, (_, i) => `Line ${i} of a long page with some words to read and more words here`)
  return makePdf([lines, lines, lines, lines])
}

const failure = async (effect: Effect.Effect<unknown, PdfNotRead>) => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return assert.fail("expected the read to fail")
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
  if (!(error instanceof PdfNotRead)) return assert.fail(`expected PdfNotRead, got ${String(exit.cause)}`)
  return error
}

/**
 * The process's threads (Linux): a worker thread is one more while it lives.
 * libuv's pool is left out: it starts on first use (a worker's file reads
 * may be that) and stays.
 */
const threads = () =>
  fs.readdirSync("/proc/self/task").filter((task) => {
    try {
      return fs.readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim() !== "libuv-worker"
    } catch {
      // Gone between the listing and the read.
      return false
    }
  }).length

describe("extractPdfText", () => {
  it("reads the text of the first pages and counts them all", async () => {
    const pdf = makePdf([["First page", "second line"], ["Second page"], ["Third page"]])
    const read = await Effect.runPromise(extractPdfText(pdf, 2))
    assert.strictEqual(read.pages, 3)
    assert.strictEqual(read.text, "First page\nsecond line\n\nSecond page")
  })

  it("refuses bytes that are not a PDF, with PDF.js's reason", async () => {
    const error = await failure(extractPdfText(Buffer.from("%PDF-1.4 this is not really a PDF"), 4))
    assert.match(error.message, /PDF/i)
  })

  it("keeps the event loop turning while a large PDF is read", async () => {
    let ticks = 0
    let longest = 0
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      longest = Math.max(longest, now - last)
      last = now
      ticks++
    }, 5)
    try {
      const read = await Effect.runPromise(extractPdfText(bigPdf(), 4))
      assert.strictEqual(read.pages, 4)
    } finally {
      clearInterval(timer)
    }
    // On the calling thread this PDF blocks it for about 0.7 s in one stretch.
    assert.isAbove(ticks, 10)
    assert.isBelow(longest, 250, `the longest pause between ticks was ${longest.toFixed(0)} ms`)
  })

  it("runs at most one reader per core at a time; the others wait their turn", async () => {
    const before = threads()
    let most = 0
    const sampler = setInterval(() => {
      most = Math.max(most, threads() - before)
    }, 10)
    try {
      const reads = await Effect.runPromise(Effect.all(Array.from({ length: os.availableParallelism() + 2 }, () => extractPdfText(bigPdf(), 1)), { concurrency: "unbounded" }))
      assert.isTrue(reads.every((read) => read.pages === 4))
    } finally {
      clearInterval(sampler)
    }
    assert.isAbove(most, 0)
    assert.isAtMost(most, os.availableParallelism(), `${most} reader threads at once`)
  })

  it("gives up on a read that takes too long and terminates its worker", async () => {
    const before = threads()
    const reading = Effect.runPromise(Effect.exit(extractPdfText(bigPdf(), 4, Duration.millis(300))))
    await Effect.runPromise(Effect.sleep("150 millis"))
    assert.isAbove(threads(), before, "the worker runs in a thread of its own")
    const exit = await reading
    assert.isTrue(Exit.isFailure(exit) && String(exit.cause).includes("longer than"), String(exit))
    await Effect.runPromise(Effect.sleep("300 millis"))
    assert.strictEqual(threads(), before, "no worker left behind")
  })

  it("stops a worker that is busy past the deadline at the deadline, not when PDF.js next looks up", async () => {
    // One content stream of half a million text runs: PDF.js reads it in one stretch of about 4 s, deaf to the close message.
    const pdf = makeInflatingPdf({ prefix: "BT /F1 12 Tf 72 720 Td\n", unit: "(hello world, hello world) Tj T*\n", megabytes: 16, suffix: "ET\n" })
    const before = threads()
    const started = performance.now()
    const error = await failure(extractPdfText(pdf, 4, Duration.seconds(1)))
    const took = performance.now() - started
    assert.include(error.message, "longer than 1s")
    assert.isBelow(took, 2500, `the read gave up after ${took.toFixed(0)} ms`)
    await Effect.runPromise(Effect.sleep("300 millis"))
    assert.strictEqual(threads(), before, "no worker left behind")
  })

  it("refuses a PDF whose stream inflates past the reader's memory, before it grows the process by gigabytes", async () => {
    // About 10 kB of deflated blank space that inflates to 1 GB: PDF.js holds it in one growing array buffer, which the
    // worker's heap cap does not count (unchecked, this grew the process by 3.5 GB).
    const pdf = makeInflatingPdf({ unit: " ", megabytes: 1024 })
    const before = process.memoryUsage.rss()
    let most = 0
    const sampler = setInterval(() => {
      most = Math.max(most, process.memoryUsage.rss() - before)
    }, 10)
    try {
      const error = await failure(extractPdfText(pdf, 4))
      assert.match(error.message, /more than 256 MB of memory/)
    } finally {
      clearInterval(sampler)
    }
    assert.isBelow(most, 1536 * 1024 * 1024, `the process grew by ${(most / 1024 / 1024).toFixed(0)} MB`)
  })

  it("names the reader's memory when a PDF fills its heap", async () => {
    // A million text runs: PDF.js's text items fill the worker's 256 MB heap, and V8 stops the worker.
    const pdf = makeInflatingPdf({ prefix: "BT /F1 12 Tf 72 720 Td\n", unit: "(hello world, hello world) Tj T*\n", megabytes: 34, suffix: "ET\n" })
    const error = await failure(extractPdfText(pdf, 4))
    assert.match(error.message, /more than 256 MB of memory/)
  })
})
