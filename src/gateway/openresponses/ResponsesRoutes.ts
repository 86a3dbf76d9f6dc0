/**
 * POST /v1/responses (OpenResponses), as OpenClaw serves it: off by default
 * (`gateway.http.endpoints.responses.enabled`, read per request, 404 when
 * off), behind the same bearer auth, agent selection, session headers and
 * error shapes as /v1/chat/completions. Each request is one agent turn
 * through Sessions.send, in `agent:<id>:openresponses-user:<user>` for a
 * `user`, else a fresh `agent:<id>:openresponses:<uuid>`, unless
 * `previous_response_id` names a response of the same scope, whose session
 * it continues (ResponseSessions). Images and files given by URL are
 * fetched before the turn (UrlSources). A client that goes away interrupts
 * the request fiber, which cancels a download in flight or the turn.
 */
import { randomUUID } from "node:crypto"
import { Effect, Layer, Result, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AgentDirectory } from "../../agent/AgentDirectory.ts"
import { AppConfig } from "../../config/AppConfig.ts"
import { SessionEvents } from "../rpc/SessionEvents.ts"
import { turnFailure } from "../openai/ChatCompletion.ts"
import { header, readJson } from "../openai/HttpBody.ts"
import { errorResponse } from "../openai/OpenAiError.ts"
import { authorize, methodNotAllowed, notFound, sseHeaders, unreadableBody } from "../openai/Guards.ts"
import type { OpenAiTurnInput } from "../openai/OpenAiRoutes.ts"
import { type AgentPrompt, buildAgentPrompt, imageLimitsOf } from "../openai/Prompt.ts"
import { requestModelOverride } from "../openai/ModelOverride.ts"
import { resolveAgent, resolveSession, type SessionChoice } from "../openai/Routing.ts"
import { fileLimits, readPdfs, renderInputFiles } from "./InputFiles.ts"
import { ResponseSessions, type ResponseScope } from "./ResponseSessions.ts"
import { parseResponsesRequest, type ResponsesRequest } from "./ResponsesRequest.ts"
import { fetchUrlParts } from "./UrlSources.ts"
import { ResponseState, type StreamEvent } from "./ResponsesOutput.ts"
import { forcedToolCall, toolChoiceInstruction } from "../openai/ForcedToolCall.ts"


/** OpenResponses frames: the event type on its own line, then the JSON. */
const sse = (event: StreamEvent): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
const DONE = "data: [DONE]\n\n"

const turnInput = (runId: string, request: ResponsesRequest, prompt: AgentPrompt, files: string | undefined, modelOverride: string | undefined): OpenAiTurnInput => {
  const choice = request.toolChoice
  const pinned = choice._tag === "function" ? choice.name : undefined
  const system = [prompt.extraSystemPrompt, toolChoiceInstruction(choice), files].filter((part): part is string => part !== undefined)
  return {
    runId,
    text: prompt.message,
    images: prompt.images.length > 0 ? prompt.images : undefined,
    extraSystemPrompt: system.length > 0 ? system.join("\n\n") : undefined,
    clientTools: choice._tag === "none" ? [] : pinned !== undefined ? request.tools.filter((tool) => tool.name === pinned) : request.tools,
    toolChoice: choice,
    forceToolCall: forcedToolCall(choice),
    sampling: request.sampling,
    modelOverride
  }
}

const responses = (responseSessions: ResponseSessions) => Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const endpoint = (yield* (yield* AppConfig).get).gateway.http.endpoints.responses
  if (!endpoint.enabled) return notFound
  if (request.method !== "POST") return methodNotAllowed("POST")
  const denied = yield* authorize(request)
  if (denied !== undefined) return denied

  const body = yield* readJson(request, endpoint.maxBodyBytes)
  if (body._tag !== "Ok") return errorResponse(unreadableBody(body, "responses"))
  const parsed = parseResponsesRequest(body.json)
  if (Result.isFailure(parsed)) return errorResponse(parsed.failure)
  let input = parsed.success

  const agents = yield* AgentDirectory
  const agentIds = yield* agents.agentIds
  const defaultAgentId = yield* agents.defaultAgentId
  const headers = request.headers
  const agent = resolveAgent(input.model, header(headers, "x-beamclaw-agent-id", "x-openclaw-agent-id", "x-openclaw-agent"), { agentIds, defaultAgentId })
  if (Result.isFailure(agent)) return errorResponse(agent.failure)
  const policy = yield* agents.sessionPolicy
  const headerKey = header(headers, "x-beamclaw-session-key", "x-openclaw-session-key")
  const scope: ResponseScope = { agentId: agent.success.agentId, user: input.user, headerKey }
  // Checked as if there were no previous_response_id: a continuation gets no session the request itself would be
  // refused (a session-key header of an agent removed since, or of another agent than an explicitly selected one).
  const direct = resolveSession({
    headerKey,
    user: input.user,
    agentId: agent.success.agentId,
    agentExplicit: agent.success.explicit,
    agentIds,
    mainKey: policy.mainKey,
    prefix: "openresponses"
  })
  if (Result.isFailure(direct)) return errorResponse(direct.failure)
  const previous = input.previousResponseId === undefined ? undefined : responseSessions.lookup(input.previousResponseId, scope)
  const session: SessionChoice = previous !== undefined
    ? { agentId: previous.sessionAgentId, sessionKey: previous.sessionKey, stateless: false }
    : direct.success
  const modelOverride = yield* requestModelOverride(headers, session.agentId)
  if (Result.isFailure(modelOverride)) return errorResponse(modelOverride.failure)
  // URL parts are fetched last, once everything that could refuse the request without a download has been checked.
  const fetched = yield* fetchUrlParts(input, endpoint)
  if (Result.isFailure(fetched)) return errorResponse(fetched.failure)
  input = fetched.success
  // Files first: a part that cannot be used is named before the message it came in is judged.
  const limits = fileLimits(endpoint.files)
  const read = yield* readPdfs(input.files, limits)
  if (Result.isFailure(read)) return errorResponse(read.failure)
  const files = renderInputFiles(read.success, limits)
  if (Result.isFailure(files)) return errorResponse(files.failure)
  const prompt = buildAgentPrompt(input.messages, imageLimitsOf(endpoint.images), { field: "input", imagePart: "input_image" })
  if (Result.isFailure(prompt)) return errorResponse(prompt.failure)

  const runId = `resp_${randomUUID()}`
  const state = new ResponseState({
    id: runId,
    model: input.model ?? "beamclaw",
    toolChoice: input.toolChoice,
    clientTools: input.tools.map((tool) => tool.name),
    echo: {
      instructions: input.instructions,
      maxOutputTokens: input.maxOutputTokens,
      temperature: input.sampling.temperature,
      topP: input.sampling.topP,
      user: input.user,
      metadata: input.metadata,
      tools: input.tools,
      previousResponseId: input.previousResponseId
    }
  })
  const sessions = yield* SessionEvents
  const turn = sessions.send(session.sessionKey, { ...turnInput(runId, input, prompt.success, files.success, modelOverride.success), oneShot: session.stateless })
  // Only a response the client received whole can be continued.
  const remember = () =>
    responseSessions.remember(runId, { ...scope, sessionKey: session.sessionKey, sessionAgentId: session.agentId })
  const responseHeaders = { "x-beamclaw-session-key": session.sessionKey, "x-beamclaw-run-id": runId }

  if (!input.stream) {
    // Stops at the end of the turn, or once the client has tool calls to run (as the chat endpoint).
    const outcome = yield* Effect.result(Stream.runForEachWhile(turn, (event) => Effect.sync(() => !state.onEvent(event).stop)))
    if (Result.isFailure(outcome)) return errorResponse(turnFailure(outcome.failure))
    const unmet = state.unmet
    if (unmet !== undefined) return errorResponse(unmet)
    remember()
    return HttpServerResponse.jsonUnsafe(state.final(), { headers: { "cache-control": "no-store", ...responseHeaders } })
  }

  // Each turn event becomes one piece of SSE text (one socket write); the terminal event goes out with [DONE].
  const events = turn.pipe(
    Stream.map((event) => state.onEvent(event)),
    Stream.takeUntil((step) => step.stop),
    Stream.map((step) => step.events.map(sse).join("")),
    Stream.concat(Stream.sync(() => {
      if (state.unmet === undefined) remember()
      return state.closing().map(sse).join("") + DONE
    })),
    // A failed run after the headers went out: response.failed, then [DONE], as OpenClaw.
    Stream.catch((error) => Stream.succeed(state.failed(turnFailure(error)).map(sse).join("") + DONE)),
    Stream.filter((text) => text.length > 0)
  )
  const sseBody = Stream.concat(Stream.sync(() => state.opening().map(sse).join("")), events).pipe(Stream.encodeText)
  return HttpServerResponse.stream(sseBody, { contentType: "text/event-stream; charset=utf-8", headers: { ...sseHeaders, ...responseHeaders } })
})

/** The route with its own response-session map: one per gateway, gone with it. */
export const layer = Layer.unwrap(Effect.sync(() => HttpRouter.add("*", "/v1/responses", responses(new ResponseSessions()))))
