import { assert, describe, it } from "@effect/vitest"
import { gatewayFlags } from "../../src/entry/argv.ts"

describe("gatewayFlags", () => {
  it("takes the command lines that only start the gateway", () => {
    assert.deepStrictEqual(gatewayFlags([]), {})
    assert.deepStrictEqual(gatewayFlags(["gateway"]), {})
    assert.deepStrictEqual(gatewayFlags(["--port", "18789"]), { port: 18789 })
    assert.deepStrictEqual(gatewayFlags(["gateway", "--port=0", "--token", "s3cret"]), { port: 0, token: "s3cret" })
    assert.deepStrictEqual(gatewayFlags(["--token=a", "--port", "99999"]), { port: 99999, token: "a" })
  })

  it("leaves help, version, other commands and unknown flags to the CLI", () => {
    for (const args of [["--help"], ["-h"], ["--version"], ["gateway", "--help"], ["agent", "-m", "hi"], ["config", "get"], ["--foo"], ["gateway", "extra"], ["bogus"]]) {
      assert.isUndefined(gatewayFlags(args), args.join(" "))
    }
  })

  it("leaves every port or token the CLI might read differently to the CLI", () => {
    const odd = [
      ["--port"], ["--port", "abc"], ["--port", "1.5"], ["--port", "+5"], ["--port", "1e3"], ["--port", "0x10"], ["--port", " 5"],
      ["--port", "-1"], ["--port", "1234567890123456"], ["--port", "1", "--port", "2"], ["--port", "18789", "gateway"],
      ["--token"], ["--token="], ["--token", "--port"], ["--token", "gateway"], ["--token", "a", "--token", "b"], ["-p", "1"]
    ]
    for (const args of odd) assert.isUndefined(gatewayFlags(args), args.join(" "))
  })
})
