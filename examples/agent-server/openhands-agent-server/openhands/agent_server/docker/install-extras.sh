#!/bin/sh
# Installs the desktop and IDE extras of the base-image stage (mounted, never copied, into the image).
set -eu
apt-get update
apt-get install -y --no-install-recommends tmux xvfb x11vnc novnc websockify fluxbox
curl -fsSL "https://github.com/coder/code-server/releases/download/v${VSCODE_VERSION}/code-server_${VSCODE_VERSION}_amd64.deb" -o /tmp/code-server.deb
apt-get install -y /tmp/code-server.deb
rm -rf /var/lib/apt/lists/* /tmp/code-server.deb
