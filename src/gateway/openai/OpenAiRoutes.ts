/**
 * The OpenAI-compatible HTTP surface: POST /v1/chat/completions (streaming
 * and not), GET /v1/models and /v1/models/{id}. On by default, behind the
 * gateway's bearer auth; `gateway.http.endpoints.chatCompletions.enabled:
 * false` turns the completions off (404), and the models too unless
 * /v1/responses is on; read per request so a config edit applies at once.
 * Every request is one agent turn through Sessions.send; a client that goes
 * away interrupts the request fiber, which cancels the turn. The
 * x-openclaw-model / x-beamclaw-model header picks the backend model for that
 * turn only (ModelOverride.ts). Images by URL are fetched before the turn
 * when `images.allowUrl` is on (UrlImages.ts), refused otherwise.
 */
import { randomUUID } from "node:crypto"
import { Effect, Layer, Result, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AgentDirectory } from "../../agent/AgentDirectory.ts"
import type { TurnInput } from "../../agent/RunLoop.ts"
import { AppConfig } from "../../config/AppConfig.ts"
import { SessionEvents } from "../rpc/SessionEvents.ts"
import { authorize, methodNotAllowed, notFound, sseHeaders, unreadableBody } from "./Guards.ts"
import { type ChatRequest, type ClientTool, parseChatRequest, type Sampling, type ToolChoice } from "./ChatRequest.ts"
import { forcedToolCall, toolChoiceInstruction } from "./ForcedToolCall.ts"
import { CompletionState, turnFailure } from "./ChatCompletion.ts"
import { header, readJson } from "./HttpBody.ts"
import { requestModelOverride } from "./ModelOverride.ts"
import { errorBody, errorResponse, invalidField, openAiError } from "./OpenAiError.ts"
import { buildAgentPrompt, imageLimitsOf } from "./Prompt.ts"
import { fetchPolicyOf, fetchUrlImages, urlImagesOf } from "./UrlImages.ts"
import { agentOfModel, modelIds, resolveAgent, resolveSession } from "./Routing.ts"

/**
 * What a chat completion asks of the run loop beyond TurnInput. The run loop
 * ignores fields it does not know yet, so these are sent as they will be read.
 */
export interface OpenAiTurnInput extends TurnInput {
  /** The request's system and developer messages, joined (OpenClaw's extraSystemPrompt). */
  readonly extraSystemPrompt?: string | undefined
  /** Function tools the client runs itself; a call to one ends the turn and goes back to the client. */
  readonly clientTools?: ReadonlyArray<ClientTool> | undefined
  readonly toolChoice?: ToolChoice | undefined
  /** Best-effort sampling parameters for the model call. */
  readonly sampling?: Sampling | undefined
}

/**
 * Until the run loop puts `extraSystemPrompt` into the system prompt, the
 * client's system messages travel at the head of the turn's text, so they
 * are not lost. Flip this when it does.
 */
const RUN_LOOP_READS_EXTRA_SYSTEM_PROMPT = true

const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`
const DONE = "data: [DONE]\n\n"

const enabled = Effect.gen(function*() {
  const config = yield* (yield* AppConfig).get
  return config.gateway.http.endpoints.chatCompletions
})

const turnInput = (
  runId: string,
  chat: ChatRequest,
  prompt: { readonly message: string; readonly extraSystemPrompt: string | undefined; readonly images: TurnInput["images"] },
  modelOverride: string | undefined
): OpenAiTurnInput => {
  const choice = chat.toolChoice
  const instructions = [prompt.extraSystemPrompt, toolChoiceInstruction(choice)].filter((part): part is string => part !== undefined)
  const extraSystemPrompt = instructions.length > 0 ? instructions.join("\n\n") : undefined
  const inline = !RUN_LOOP_READS_EXTRA_SYSTEM_PROMPT && extraSystemPrompt !== undefined
  const pinned = choice._tag === "function" ? choice.name : undefined
  return {
    runId,
    text: inline ? `[Instructions from the client's system message]\n${extraSystemPrompt}\n\n${prompt.message}` : prompt.message,
    images: prompt.images !== undefined && prompt.images.length > 0 ? prompt.images : undefined,
    extraSystemPrompt: inline ? undefined : extraSystemPrompt,
    clientTools: choice._tag === "none" ? [] : pinned !== undefined ? chat.tools.filter((tool) => tool.name === pinned) : chat.tools,
    toolChoice: chat.toolChoice,
    forceToolCall: forcedToolCall(choice),
    sampling: chat.sampling,
    modelOverride
  }
}

const chatCompletions = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const endpoint = yield* enabled
  if (!endpoint.enabled) return notFound
  if (request.method !== "POST") return methodNotAllowed("POST")
  const denied = yield* authorize(request)
  if (denied !== undefined) return denied

  const body = yield* readJson(request, endpoint.maxBodyBytes)
  if (body._tag !== "Ok") return errorResponse(unreadableBody(body, "chatCompletions"))
  const parsed = parseChatRequest(body.json)
  if (Result.isFailure(parsed)) return errorResponse(parsed.failure)
  const chat = parsed.success

  const agents = yield* AgentDirectory
  const agentIds = yield* agents.agentIds
  const defaultAgentId = yield* agents.defaultAgentId
  const headers = request.headers
  const agent = resolveAgent(chat.model, header(headers, "x-beamclaw-agent-id", "x-openclaw-agent-id", "x-openclaw-agent"), { agentIds, defaultAgentId })
  if (Result.isFailure(agent)) return errorResponse(agent.failure)
  const policy = yield* agents.sessionPolicy
  const session = resolveSession({
    headerKey: header(headers, "x-beamclaw-session-key", "x-openclaw-session-key"),
    user: chat.user,
    agentId: agent.success.agentId,
    agentExplicit: agent.success.explicit,
    agentIds,
    mainKey: policy.mainKey
  })
  if (Result.isFailure(session)) return errorResponse(session.failure)
  const modelOverride = yield* requestModelOverride(headers, session.success.agentId)
  if (Result.isFailure(modelOverride)) return errorResponse(modelOverride.failure)
  const imageLimits = imageLimitsOf(endpoint.images)
  const urlImages = urlImagesOf(chat.messages, "messages")
  let messages = chat.messages
  // More images than the cap is the prompt builder's refusal, made before anything is downloaded.
  const first = urlImages[0]
  if (first !== undefined && (chat.messages[first.messageIndex]?.imageUrls.length ?? 0) <= imageLimits.maxParts) {
    if (endpoint.images?.allowUrl !== true) {
      return errorResponse(invalidField(first.at, `Invalid '${first.at}': images by URL are off for this endpoint (gateway.http.endpoints.chatCompletions.images.allowUrl); send the image inline as a base64 data: URI.`, "url_not_allowed"))
    }
    const fetched = yield* fetchUrlImages(messages, urlImages, fetchPolicyOf(endpoint.images, endpoint.ssrfPolicy, imageLimits.maxBytesPerImage), imageLimits.maxTotalBytes)
    if (Result.isFailure(fetched)) return errorResponse(fetched.failure)
    messages = fetched.success
  }
  const prompt = buildAgentPrompt(messages, imageLimits)
  if (Result.isFailure(prompt)) return errorResponse(prompt.failure)

  const runId = `chatcmpl_${randomUUID()}`
  const state = new CompletionState({
    id: runId,
    model: chat.model ?? "beamclaw",
    toolChoice: chat.toolChoice,
    clientTools: chat.tools.map((tool) => tool.name)
  })
  const sessions = yield* SessionEvents
  const turn = sessions.send(session.success.sessionKey, { ...turnInput(runId, chat, prompt.success, modelOverride.success), oneShot: session.success.stateless })
  const responseHeaders = { "x-beamclaw-session-key": session.success.sessionKey, "x-beamclaw-run-id": runId }

  if (!chat.stream) {
    // The run loop ends a turn whose model called client tools (TurnCompleted, stopReason toolUse);
    // stopping there, or at any output after the calls, keeps the response to what the client asked.
    const outcome = yield* Effect.result(Stream.runForEachWhile(turn, (event) => Effect.sync(() => !state.onEvent(event).stop)))
    if (Result.isFailure(outcome)) return errorResponse(turnFailure(outcome.failure))
    const unmet = state.unmet
    if (unmet !== undefined) return errorResponse(unmet)
    return HttpServerResponse.jsonUnsafe(state.completion(), { headers: { "cache-control": "no-store", ...responseHeaders } })
  }

  // Each event becomes one piece of SSE text (one socket write), and the
  // closing chunks go out together with [DONE].
  const events = turn.pipe(
    Stream.map((event) => state.onEvent(event)),
    Stream.takeUntil((step) => step.stop),
    Stream.map((step) => step.chunks.map(sse).join("")),
    Stream.concat(Stream.sync(() => {
      const unmet = state.unmet
      return (unmet === undefined ? state.closingChunks(chat.includeUsage).map(sse).join("") : sse(errorBody(unmet))) + DONE
    })),
    // A failed run after the headers went out: OpenClaw sends an error object, then [DONE].
    Stream.catch((error) => Stream.succeed(sse(errorBody(turnFailure(error))) + DONE)),
    Stream.filter((text) => text.length > 0)
  )
  const sseBody = Stream.concat(Stream.succeed(sse(state.roleChunk())), events).pipe(Stream.encodeText)
  return HttpServerResponse.stream(sseBody, { contentType: "text/event-stream; charset=utf-8", headers: { ...sseHeaders, ...responseHeaders } })
})

/** When the gateway started, in seconds: the `created` of every listed model. */
const startedAt = Math.floor(Date.now() / 1000)

const modelObject = (id: string) => ({ id, object: "model", created: startedAt, owned_by: "beamclaw" })

const guardedGet = <R>(handler: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    // OpenClaw serves the models list when either compatibility endpoint is on.
    const endpoints = (yield* (yield* AppConfig).get).gateway.http.endpoints
    if (!endpoints.chatCompletions.enabled && !endpoints.responses.enabled) return notFound
    if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed("GET")
    const denied = yield* authorize(request)
    if (denied !== undefined) return denied
    return yield* handler(request)
  })

const listModels = Effect.gen(function*() {
  const agents = yield* AgentDirectory
  const ids = modelIds(yield* agents.agentIds)
  return HttpServerResponse.jsonUnsafe({ object: "list", data: ids.map(modelObject) }, { headers: { "cache-control": "no-store" } })
})

const getModel = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const path = request.url.split("?")[0] ?? ""
    const raw = path.slice("/v1/models/".length)
    let id: string
    try {
      id = decodeURIComponent(raw)
    } catch {
      return errorResponse(openAiError(400, `Invalid model id in the path: ${JSON.stringify(raw)}.`, { param: "model", code: "invalid_model" }))
    }
    const agents = yield* AgentDirectory
    const agentIds = yield* agents.agentIds
    const target = agentOfModel(id)
    if (id === "" || target === undefined || (target !== "default" && !agentIds.includes(target))) {
      return errorResponse(openAiError(404, `The model ${JSON.stringify(id)} does not exist. Models are agents: ${modelIds(agentIds).join(", ")}.`, { type: "invalid_request_error", param: "model", code: "model_not_found" }))
    }
    return HttpServerResponse.jsonUnsafe(modelObject(id), { headers: { "cache-control": "no-store" } })
  })

// The router files /v1/models and /v1/models/* under one route, so one handler tells them apart.
const models = guardedGet((request) => {
  const path = (request.url.split("?")[0] ?? "").replace(/\/+$/, "")
  return path === "/v1/models" ? listModels : getModel(request)
})

export const layer = Layer.mergeAll(
  HttpRouter.add("*", "/v1/chat/completions", chatCompletions),
  HttpRouter.add("*", "/v1/models/*", models)
)
