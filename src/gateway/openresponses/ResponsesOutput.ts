/**
 * Turns a running agent turn (TurnEvents) into an OpenResponses
 * ResponseResource, and for `stream: true` into the SSE event sequence the
 * official SDKs accumulate: response.created / in_progress, then per output
 * item output_item.added, its content part or arguments, output_item.done,
 * and a terminal response.completed, response.incomplete or response.failed.
 * Every event carries its `sequence_number`. The model's prose is one
 * `message` item; each call of a client tool is a `function_call` item after
 * it, and ends what the client is shown of the turn (it runs the tool and
 * answers with a function_call_output in its next request).
 */
import { randomUUID } from "node:crypto"
import type { Usage } from "../../agent/Message.ts"
import type { TurnEvent } from "../../agent/TurnEvent.ts"
import type { ToolChoice } from "../openai/ChatRequest.ts"
import { openAiError, type OpenAiError } from "../openai/OpenAiError.ts"

export const NO_RESPONSE = "No response from BeamClaw."

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed"

export interface ResponsesUsage {
  readonly input_tokens: number
  readonly input_tokens_details: { readonly cached_tokens: number }
  readonly output_tokens: number
  readonly output_tokens_details: { readonly reasoning_tokens: number }
  readonly total_tokens: number
}

export const toResponsesUsage = (usage: Usage | undefined): ResponsesUsage => {
  const cached = usage?.cacheRead ?? 0
  const input = (usage?.input ?? 0) + cached + (usage?.cacheWrite ?? 0)
  const output = usage?.output ?? 0
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + output
  }
}

interface MessageItem {
  readonly type: "message"
  readonly id: string
  readonly role: "assistant"
  readonly status: "in_progress" | "completed" | "incomplete"
  readonly content: ReadonlyArray<{ readonly type: "output_text"; readonly text: string; readonly annotations: ReadonlyArray<never>; readonly logprobs: ReadonlyArray<never> }>
}

interface FunctionCallItem {
  readonly type: "function_call"
  readonly id: string
  readonly call_id: string
  readonly name: string
  readonly arguments: string
  readonly status: "in_progress" | "completed"
}

export type OutputItem = MessageItem | FunctionCallItem

/** What the response echoes of its request, as OpenAI's ResponseResource does. */
export interface RequestEcho {
  readonly instructions: string | undefined
  readonly maxOutputTokens: number | undefined
  readonly temperature: number | undefined
  readonly topP: number | undefined
  readonly user: string | undefined
  readonly metadata: Readonly<Record<string, string>>
  readonly tools: ReadonlyArray<{ readonly name: string; readonly description?: string | undefined; readonly parameters: Readonly<Record<string, unknown>> }>
  readonly previousResponseId?: string | undefined
}

/** One SSE event: `type` is also the frame's `event:` line. */
export interface StreamEvent {
  readonly type: string
  readonly sequence_number: number
  readonly [field: string]: unknown
}

export interface Step {
  /** Stream events for this turn event, in order (sequence numbers already assigned). */
  readonly events: ReadonlyArray<StreamEvent>
  /** Nothing more is wanted from this turn: the client has tool calls to run. */
  readonly stop: boolean
}

const messageItem = (id: string, text: string, status: MessageItem["status"]): MessageItem => ({
  type: "message",
  id,
  role: "assistant",
  status,
  content: [{ type: "output_text", text, annotations: [], logprobs: [] }]
})

const missingToolCall = (choice: ToolChoice): OpenAiError =>
  openAiError(502, choice._tag === "function"
    ? `The agent answered without calling the function ${JSON.stringify(choice.name)} that tool_choice requires.`
    : "The agent answered without calling one of the client tools, but tool_choice is \"required\".", { code: "tool_call_missing" })

/**
 * One response as events arrive, shared by streaming and non-streaming
 * requests so both agree on items, text and status.
 */
export class ResponseState {
  readonly id: string
  readonly model: string
  readonly createdAt: number
  readonly toolChoice: ToolChoice
  readonly clientTools: ReadonlySet<string>
  readonly echo: RequestEcho
  /** Items whose output_item.done has been sent, in output order. */
  private readonly items: Array<OutputItem> = []
  /** The message item being streamed, if one is open. */
  private open: { readonly id: string; readonly index: number; text: string } | undefined = undefined
  /** Prose held back while a required client tool call is not confirmed yet. */
  private held = ""
  private calls = 0
  private finalText: string | undefined = undefined
  private usage: Usage | undefined = undefined
  private stopReason: string | undefined = undefined
  private sequence = 0

  constructor(options: { readonly id: string; readonly model: string; readonly toolChoice: ToolChoice; readonly clientTools: ReadonlyArray<string>; readonly echo: RequestEcho }) {
    this.id = options.id
    this.model = options.model
    this.createdAt = Math.floor(Date.now() / 1000)
    this.toolChoice = options.toolChoice
    this.clientTools = new Set(options.clientTools)
    this.echo = options.echo
  }

  private get holdsProse(): boolean {
    return this.toolChoice._tag === "required" || this.toolChoice._tag === "function"
  }

  private isClientTool(name: string): boolean {
    return this.toolChoice._tag === "function" ? name === this.toolChoice.name : this.toolChoice._tag !== "none" && this.clientTools.has(name)
  }

  private event(type: string, fields: Record<string, unknown>): StreamEvent {
    return { ...fields, type, sequence_number: this.sequence++ }
  }

  private get nextIndex(): number {
    return this.items.length + (this.open === undefined ? 0 : 1)
  }

  /** The ResponseResource as it stands, with `output` given or the finished items. */
  resource(status: ResponseStatus, options: { readonly output?: ReadonlyArray<OutputItem>; readonly error?: OpenAiError } = {}): Record<string, unknown> {
    const choice = this.toolChoice
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      background: false,
      error: options.error === undefined ? null : { code: options.error.code ?? "server_error", message: options.error.message },
      incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: this.echo.instructions ?? null,
      max_output_tokens: this.echo.maxOutputTokens ?? null,
      metadata: this.echo.metadata,
      model: this.model,
      output: options.output ?? this.items,
      parallel_tool_calls: true,
      previous_response_id: this.echo.previousResponseId ?? null,
      reasoning: null,
      store: false,
      temperature: this.echo.temperature ?? null,
      text: { format: { type: "text" } },
      tool_choice: choice._tag === "function" ? { type: "function", name: choice.name } : choice._tag,
      tools: this.echo.tools.map((tool) => ({ type: "function", name: tool.name, description: tool.description ?? null, parameters: tool.parameters, strict: false })),
      top_p: this.echo.topP ?? null,
      truncation: "disabled",
      usage: status === "in_progress" ? null : toResponsesUsage(this.usage),
      user: this.echo.user ?? null
    }
  }

  /** response.created and response.in_progress. */
  opening(): ReadonlyArray<StreamEvent> {
    const response = this.resource("in_progress", { output: [] })
    return [this.event("response.created", { response }), this.event("response.in_progress", { response })]
  }

  private openMessage(): Array<StreamEvent> {
    const id = `msg_${randomUUID()}`
    const index = this.nextIndex
    this.open = { id, index, text: "" }
    return [
      this.event("response.output_item.added", { output_index: index, item: { type: "message", id, role: "assistant", status: "in_progress", content: [] } }),
      this.event("response.content_part.added", { item_id: id, output_index: index, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } })
    ]
  }

  private appendText(text: string): Array<StreamEvent> {
    const events = this.open === undefined ? this.openMessage() : []
    const open = this.open
    if (open === undefined) return events
    open.text += text
    events.push(this.event("response.output_text.delta", { item_id: open.id, output_index: open.index, content_index: 0, delta: text, logprobs: [] }))
    return events
  }

  private closeMessage(status: "completed" | "incomplete"): Array<StreamEvent> {
    const open = this.open
    if (open === undefined) return []
    this.open = undefined
    const item = messageItem(open.id, open.text, status)
    this.items.push(item)
    const part = item.content[0]
    return [
      this.event("response.output_text.done", { item_id: open.id, output_index: open.index, content_index: 0, text: open.text, logprobs: [] }),
      this.event("response.content_part.done", { item_id: open.id, output_index: open.index, content_index: 0, part }),
      this.event("response.output_item.done", { output_index: open.index, item })
    ]
  }

  private functionCall(callId: string, name: string, args: string): Array<StreamEvent> {
    const id = `fc_${randomUUID()}`
    const index = this.nextIndex
    const item: FunctionCallItem = { type: "function_call", id, call_id: callId, name, arguments: args, status: "completed" }
    this.items.push(item)
    this.calls++
    return [
      this.event("response.output_item.added", { output_index: index, item: { ...item, arguments: "", status: "in_progress" } }),
      this.event("response.function_call_arguments.delta", { item_id: id, output_index: index, delta: args }),
      this.event("response.function_call_arguments.done", { item_id: id, output_index: index, name, arguments: args }),
      this.event("response.output_item.done", { output_index: index, item })
    ]
  }

  onEvent(event: TurnEvent): Step {
    switch (event._tag) {
      case "TextDelta": {
        // After client tool calls, any new output belongs to a model call the client did not ask for.
        if (this.calls > 0) return { events: [], stop: true }
        if (event.text === "") return { events: [], stop: false }
        if (this.holdsProse) {
          this.held += event.text
          return { events: [], stop: false }
        }
        return { events: this.appendText(event.text), stop: false }
      }
      case "ToolStarted": {
        if (!this.isClientTool(event.name)) return { events: [], stop: this.calls > 0 }
        const events: Array<StreamEvent> = []
        if (this.held !== "") {
          // The call is confirmed, so the commentary before it can go out.
          events.push(...this.appendText(this.held))
          this.held = ""
        }
        events.push(...this.closeMessage("completed"))
        events.push(...this.functionCall(event.id, event.name, JSON.stringify(event.input ?? {})))
        return { events, stop: false }
      }
      case "ToolFinished":
        return { events: [], stop: this.calls > 0 && !this.isClientTool(event.name) }
      case "TurnCompleted":
        this.finalText = event.text
        this.usage = event.usage
        this.stopReason = event.stopReason
        return { events: [], stop: true }
      default:
        return { events: [], stop: this.calls > 0 }
    }
  }

  /** The error to report instead of a response, if the turn did not do what the request required. */
  get unmet(): OpenAiError | undefined {
    if (this.holdsProse && this.calls === 0) return missingToolCall(this.toolChoice)
    return undefined
  }

  private get status(): "completed" | "incomplete" {
    return this.calls === 0 && this.stopReason === "length" ? "incomplete" : "completed"
  }

  /** The last events of a stream that ended well: the message closed (or sent whole), then the terminal event. */
  closing(): ReadonlyArray<StreamEvent> {
    const unmet = this.unmet
    if (unmet !== undefined) return this.failed(unmet)
    const status = this.status
    const events: Array<StreamEvent> = []
    if (this.items.length === 0 && this.open === undefined) {
      // No deltas arrived (a provider that does not stream): send the answer whole.
      events.push(...this.appendText(this.finalText !== undefined && this.finalText !== "" ? this.finalText : NO_RESPONSE))
    }
    events.push(...this.closeMessage(status))
    events.push(this.event(status === "incomplete" ? "response.incomplete" : "response.completed", { response: this.resource(status) }))
    return events
  }

  /** A failed turn after the stream began: response.failed with what was produced so far. */
  failed(error: OpenAiError): ReadonlyArray<StreamEvent> {
    const open = this.open
    const output = open === undefined ? this.items : [...this.items, messageItem(open.id, open.text, "incomplete")]
    return [this.event("response.failed", { response: this.resource("failed", { output, error }) })]
  }

  /** The whole ResponseResource for a non-streaming request. */
  final(): Record<string, unknown> {
    const status = this.status
    // With client calls, the prose before them was closed into a message item already.
    if (this.calls > 0) return this.resource(status, { output: this.items })
    const streamed = this.open?.text ?? ""
    const text = (this.finalText !== undefined && this.finalText !== "" ? this.finalText : streamed) || NO_RESPONSE
    return this.resource(status, { output: [messageItem(this.open?.id ?? `msg_${randomUUID()}`, text, status)] })
  }
}
