"""A tiny SDK: what the agent server reports about itself."""

import os

__version__ = "0.1.0"


def describe() -> dict[str, str]:
    """Return the name, version and build the server answers on /version."""
    return {
        "name": "openhands-agent-server",
        "version": __version__,
        "git_sha": os.environ.get("OPENHANDS_BUILD_GIT_SHA", "unknown"),
        "git_ref": os.environ.get("OPENHANDS_BUILD_GIT_REF", "unknown"),
    }
