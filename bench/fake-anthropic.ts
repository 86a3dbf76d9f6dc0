/**
 * Runs test/support/FakeAnthropic.ts in its own process for bench/sessions.ts,
 * so the fake's request log does not count towards the measured process.
 * Prints its URL as the first stdout line and runs until SIGTERM.
 */
import { startFakeAnthropic } from "../test/support/FakeAnthropic.ts"

const fake = await startFakeAnthropic()
process.stdout.write(`${fake.url}\n`)
const stop = () => {
  void fake.close().then(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
