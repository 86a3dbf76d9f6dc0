/**
 * Liveness and readiness probes, as OpenClaw serves them: /health and
 * /healthz are live while the process answers; /ready and /readyz are 200
 * only when every component is up, 503 with the reasons otherwise.
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Readiness } from "./Readiness.ts"

const probeHeaders = { "cache-control": "no-store" }

const probe = <R>(body: Effect.Effect<{ readonly status: number; readonly json: unknown }, never, R>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("Method Not Allowed", { status: 405, headers: { allow: "GET, HEAD", ...probeHeaders } })
    }
    const { status, json } = yield* body
    return HttpServerResponse.jsonUnsafe(json, { status, headers: probeHeaders })
  })

const live = probe(Effect.succeed({ status: 200, json: { ok: true, status: "live" } }))

const ready = probe(Effect.gen(function*() {
  const readiness = yield* Readiness
  const report = yield* readiness.report
  return { status: report.ready ? 200 : 503, json: report }
}))

export const layer = Layer.mergeAll(
  HttpRouter.add("*", "/health", live),
  HttpRouter.add("*", "/healthz", live),
  HttpRouter.add("*", "/ready", ready),
  HttpRouter.add("*", "/readyz", ready)
)

/**
 * GET and HEAD of the probes alone, for a router that sends every other
 * request on to a table with `layer` in it: the same answers, without
 * inserting each probe once per HTTP method (about 35) while the gateway
 * starts.
 */
export const probes = HttpRouter.addAll([
  HttpRouter.route("GET", "/health", live),
  HttpRouter.route("HEAD", "/health", live),
  HttpRouter.route("GET", "/healthz", live),
  HttpRouter.route("HEAD", "/healthz", live),
  HttpRouter.route("GET", "/ready", ready),
  HttpRouter.route("HEAD", "/ready", ready),
  HttpRouter.route("GET", "/readyz", ready),
  HttpRouter.route("HEAD", "/readyz", ready)
])
