"""Where the agent works: a directory, /workspace in the image."""

import os

ROOT = os.environ.get("OPENHANDS_WORKSPACE", "/workspace")
