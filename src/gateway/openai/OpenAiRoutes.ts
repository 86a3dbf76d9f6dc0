/**
 * Placeholder: this surface is being built (issue #3).
 */
import { Layer } from "effect"

export const layer = Layer.empty
