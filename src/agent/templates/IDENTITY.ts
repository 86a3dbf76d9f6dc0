/** Seed text for IDENTITY.md: the agent's self-chosen name and style, filled in on first run. */
export const IDENTITY_TEMPLATE = `# IDENTITY.md — Who I Am

Fill this in during the first conversation, together with the user.

- Name:
- What I am:
- Vibe:
- Emoji:
- Avatar:

Avatar may be a path inside this workspace, an http(s) URL, or a data URI.
`
