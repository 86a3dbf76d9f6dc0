/**
 * The hub's per-(device, role) generation: closeDevice bumps it, so a connect
 * that read it before its credentials were checked can tell, just before it
 * registers, that a token change or removal closed the device's connections
 * while it was in flight (Connection.ts re-checks it with no yield before
 * hub.register). Exercised on a real hub with a registered client.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { DetachedRuns } from "../../../src/runtime/DetachedRuns.ts"
import * as Hub from "../../../src/gateway/ws/Hub.ts"

const makeHub = Hub.make({ version: "test", tickIntervalMs: 30_000, handshakeTimeoutMs: 10_000 }).pipe(Effect.provide(DetachedRuns.layer))

const client = (connId: string, deviceId: string, role: "operator" | "node", closes: Array<readonly [string, number, string]>): Hub.HubClient => ({
  connId,
  role,
  scopes: [],
  deviceId,
  sessionScoped: false,
  subscriptions: new Set(),
  offer: () => true,
  close: (code, reason) => void closes.push([connId, code, reason]),
  seq: 0
})

describe("Hub.deviceGeneration", () => {
  it.effect("changes for (device, role) when its connections are closed, not for other roles or devices", () =>
    Effect.gen(function*() {
      const hub = yield* makeHub
      const closes: Array<readonly [string, number, string]> = []
      hub.register(client("a", "dev-1", "operator", closes), undefined)
      hub.register(client("b", "dev-1", "node", closes), undefined)
      hub.register(client("c", "dev-2", "operator", closes), undefined)

      const before = { op1: hub.deviceGeneration("dev-1", "operator"), node1: hub.deviceGeneration("dev-1", "node"), op2: hub.deviceGeneration("dev-2", "operator") }
      // A rotation of dev-1's operator token: its registered operator connection goes, and a connect in flight sees the change.
      hub.closeDevice("dev-1", 4001, "device removed", "operator")
      assert.deepStrictEqual(closes, [["a", 4001, "device removed"]])
      assert.notStrictEqual(hub.deviceGeneration("dev-1", "operator"), before.op1)
      assert.strictEqual(hub.deviceGeneration("dev-1", "node"), before.node1)
      assert.strictEqual(hub.deviceGeneration("dev-2", "operator"), before.op2)

      // A removal (no role) closes every role of the device and changes every role's generation.
      const afterRotation = hub.deviceGeneration("dev-1", "operator")
      hub.closeDevice("dev-1", 1008, "device removed")
      assert.deepStrictEqual(closes.slice(1), [["a", 1008, "device removed"], ["b", 1008, "device removed"]])
      assert.notStrictEqual(hub.deviceGeneration("dev-1", "operator"), afterRotation)
      assert.notStrictEqual(hub.deviceGeneration("dev-1", "node"), before.node1)
      assert.strictEqual(hub.deviceGeneration("dev-2", "operator"), before.op2)

      // Nothing closed, nothing changed: a connect that raced nothing registers.
      const steady = hub.deviceGeneration("dev-2", "operator")
      hub.closeDevice("dev-3", 4001, "device removed", "operator")
      assert.strictEqual(hub.deviceGeneration("dev-2", "operator"), steady)
    }))
})
