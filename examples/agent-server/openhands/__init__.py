"""OpenHands example packages: the SDK and the agent server."""
