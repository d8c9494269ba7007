"""A tiny SDK: what the agent server reports about itself."""

__version__ = "0.1.0"


def describe() -> dict[str, str]:
    """Return the name and version the server answers on /version."""
    return {"name": "openhands-agent-server", "version": __version__}
