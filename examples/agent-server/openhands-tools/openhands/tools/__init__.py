"""Tools the agent may call; here, one that says hello."""

from openhands.sdk import describe


def hello(name: str) -> str:
    """Greet name, naming the server that answers."""
    return f"hello {name}, from {describe()['name']}"
