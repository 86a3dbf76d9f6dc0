/** Seed text for USER.md: what the agent learns about the person it serves. */
export const USER_TEMPLATE = `# USER.md — About My Human

Keep this current as you learn. Short, factual, useful.

- Name:
- What to call them:
- Pronouns:
- Time zone:
- Notes:

## Preferences

Write lasting preferences as plain directives ("Prefer short answers",
"Never schedule before 9:00"). When one changes, replace it; do not keep
contradicting lines.
`
