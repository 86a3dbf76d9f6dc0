/**
 * Seed text for HEARTBEAT.md. Every line is a markdown heading on purpose: a
 * file with only headings and blank lines counts as empty, so heartbeat polls
 * are skipped (and cost nothing) until the user adds a real task.
 */
export const HEARTBEAT_TEMPLATE = `# HEARTBEAT.md

# Heartbeats are skipped while this file holds only lines starting with "#".
# Add plain lines below (for example "- check the inbox for anything urgent")
# to have the agent look at them on each heartbeat.
`
