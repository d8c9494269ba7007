"""Entry point: python -m openhands.agent_server (and the agent-server executable)."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openhands.sdk import describe
from openhands.tools import hello
from openhands.workspace import ROOT


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/alive": {"status": "ok"},
            "/version": describe(),
            "/hello": {"message": hello("agent"), "workspace": ROOT},
        }
        body = routes.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {"detail": "not found"}).encode())


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
