"""The agent server: a small HTTP service."""
