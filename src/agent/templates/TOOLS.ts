/** Seed text for TOOLS.md: local notes about the user's setup; it never grants or removes tools. */
export const TOOLS_TEMPLATE = `# TOOLS.md — Local Notes

Which tools you have is decided by BeamClaw's tool policy, not by this file.
Use this page for the details of *this* setup that help you use them well:

- hostnames, SSH aliases and which machine is which
- device, camera or speaker nicknames
- preferred voices, formats, or output folders
- quirks worth remembering ("the NAS sleeps after midnight")

## Notes

`
