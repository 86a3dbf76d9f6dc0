/**
 * The `code` of a Node system error (`ENOENT`, `EEXIST`, ...), read from an
 * unknown failure. One place for it, instead of a guard in every module
 * that touches the file system or the network.
 */
import { Predicate } from "effect"

export const errnoCode = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "code") && Predicate.isString(error.code) ? error.code : undefined

export const isErrno = (error: unknown, code: string): boolean => errnoCode(error) === code
