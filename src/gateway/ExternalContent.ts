/**
 * Content from outside (a webhook's message, a file a client attached) goes
 * to the model between boundary markers it is told not to obey. Markers that
 * appear inside such content, in any spelling (with or without an id, in any
 * case, with look-alike angle brackets), are defused first, as OpenClaw does,
 * so only the wrapper's own markers open or close the block.
 */

const OPEN = "[<\\uFF1C\\u2039\\u3008\\u276E]"
const CLOSE = "[>\\uFF1E\\u203A\\u3009\\u276F]"
const NOT_CLOSE = "[^>\\uFF1E\\u203A\\u3009\\u276F]"
const MARKER = new RegExp(`${OPEN}{3}\\s*(END_)?EXTERNAL_UNTRUSTED_CONTENT\\b${NOT_CLOSE}*${CLOSE}{3}`, "giu")

export const defuseMarkers = (text: string): string =>
  text.replace(MARKER, (_match, end: string | undefined) => end === undefined ? "[[MARKER_SANITIZED]]" : "[[END_MARKER_SANITIZED]]")
