// End-to-end tests run the real bundle, so every test run builds it first.
import { execFileSync } from "node:child_process"

export default function setup() {
  execFileSync(process.execPath, ["scripts/build.ts"], { stdio: "inherit" })
}
