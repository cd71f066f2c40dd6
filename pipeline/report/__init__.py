"""The read side's reports: what leaves the store for a person or another tool (profile exports, ...)."""
