/**
 * test/support/FakeAnthropic.ts in its own process for the gateway benches.
 * Unlike bench/fake-anthropic.ts it keeps its request log short (the benches
 * send hundreds of thousands of requests) and remembers the last body the
 * gateway sent, so the baseline can replay exactly that request.
 *
 * stdout, first line: the fake's URL. Then a line protocol on stdin:
 *   "last"  -> one line: the JSON body of the last request without an
 *              `x-bench-baseline` header (that is, the last one from the gateway)
 *   "count" -> one line: {"gateway":n,"baseline":m} requests answered so far
 * Runs until SIGTERM or stdin closes.
 */
import * as readline from "node:readline"
import { type RecordedAnthropicRequest, startFakeAnthropic } from "../test/support/FakeAnthropic.ts"

let last: unknown = undefined
let gateway = 0
let baseline = 0
const log: { requests: ReadonlyArray<RecordedAnthropicRequest> | undefined } = { requests: undefined }

const fake = await startFakeAnthropic((request) => {
  if (request.headers["x-bench-baseline"] === undefined) {
    last = request.raw
    gateway++
  } else {
    baseline++
  }
  // The fake records every request; drop the log now and then so it does not grow.
  const requests = log.requests
  if (requests !== undefined && requests.length > 256 && Array.isArray(requests)) requests.length = 0
  return undefined
})
log.requests = fake.requests
process.stdout.write(`${fake.url}\n`)

const stop = () => {
  void fake.close().then(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)

const lines = readline.createInterface({ input: process.stdin })
lines.on("line", (line) => {
  const command = line.trim()
  if (command === "last") process.stdout.write(`${JSON.stringify(last ?? null)}\n`)
  else if (command === "count") process.stdout.write(`${JSON.stringify({ gateway, baseline })}\n`)
  else process.stdout.write(`${JSON.stringify({ error: `unknown command ${JSON.stringify(command)}` })}\n`)
})
lines.on("close", stop)
