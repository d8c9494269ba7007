# syntax=docker/dockerfile:1.7
# The agent server's images, shaped like OpenHands/software-agent-sdk's own Dockerfile.
# Its build runs: docker buildx build --target <TARGET> --build-arg BASE_IMAGE=...
#   --build-arg OPENHANDS_BUILD_GIT_SHA=<sha> --build-arg OPENHANDS_BUILD_GIT_REF=<ref> <workspace root>
# runtimebuild bakes those into a standalone Dockerfile that a plain `docker build` turns into TARGET.

ARG BASE_IMAGE='ghcr.io/example/base:1.0'
ARG USERNAME=openhands
ARG UID=10001
ARG GID=10001
ARG PORT=8000
ARG ENABLE_VERTEX='1'

####################################################################################
# builder: the workspace installed into /agent-server/.venv with uv
####################################################################################
FROM python:3.13-bookworm AS builder
ARG USERNAME UID GID
ENV UV_PROJECT_ENVIRONMENT=/agent-server/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
COPY --from=ghcr.io/astral-sh/uv:0.11.6 /uv /uvx /bin/
RUN groupadd -g ${GID} ${USERNAME} \
    && useradd -m -u ${UID} -g ${GID} -s /usr/sbin/nologin ${USERNAME} \
    && mkdir -p /agent-server && chown ${USERNAME}:${USERNAME} /agent-server
USER ${USERNAME}
WORKDIR /agent-server
COPY --chown=${USERNAME}:${USERNAME} pyproject.toml uv.lock README.md LICENSE ./
COPY --chown=${USERNAME}:${USERNAME} openhands-sdk ./openhands-sdk
COPY --chown=${USERNAME}:${USERNAME} openhands-tools ./openhands-tools
COPY --chown=${USERNAME}:${USERNAME} openhands-workspace ./openhands-workspace
COPY --chown=${USERNAME}:${USERNAME} openhands-agent-server ./openhands-agent-server
RUN --mount=type=cache,target=/home/${USERNAME}/.cache,uid=${UID},gid=${GID} \
    uv sync --frozen --no-dev --no-editable

####################################################################################
# binary-builder: one executable made with PyInstaller from the builder's environment
####################################################################################
FROM builder AS binary-builder
ARG USERNAME UID GID
RUN --mount=type=cache,target=/home/${USERNAME}/.cache,uid=${UID},gid=${GID} \
    uv run --frozen --with pyinstaller pyinstaller \
      --distpath /agent-server/dist openhands-agent-server/openhands/agent_server/agent-server.spec

####################################################################################
# base-image-minimal: the runtime user, an init and the build's identity
####################################################################################
FROM ${BASE_IMAGE} AS base-image-minimal
ARG USERNAME UID GID PORT ENABLE_VERTEX='1'
ARG OPENHANDS_BUILD_GIT_SHA='0123456789abcdef0123456789abcdef01234567'
ARG OPENHANDS_BUILD_GIT_REF='refs/heads/main'
ENV OPENHANDS_BUILD_GIT_SHA=${OPENHANDS_BUILD_GIT_SHA} \
    OPENHANDS_BUILD_GIT_REF=${OPENHANDS_BUILD_GIT_REF} \
    ENABLE_VERTEX=${ENABLE_VERTEX} \
    PORT=${PORT} \
    PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g ${GID} ${USERNAME} \
    && useradd -m -u ${UID} -g ${GID} -s /bin/bash ${USERNAME} \
    && mkdir -p /workspace && chown ${USERNAME}:${USERNAME} /workspace
WORKDIR /workspace
EXPOSE ${PORT}

####################################################################################
# base-image: base-image-minimal plus the desktop and IDE extras
####################################################################################
FROM base-image-minimal AS base-image
ARG USERNAME
ARG VSCODE_VERSION='1.99.0'
ARG DESKTOP_TITLE="OpenHands agent desktop"
ENV VSCODE_VERSION=${VSCODE_VERSION} DESKTOP_TITLE=${DESKTOP_TITLE}
RUN --mount=type=bind,source=openhands-agent-server/openhands/agent_server/docker/install-extras.sh,target=/tmp/install-extras.sh \
    sh /tmp/install-extras.sh

####################################################################################
# The targets: the installed source tree or the single executable, on either base
####################################################################################
FROM base-image AS source
ARG USERNAME
COPY --from=builder --chown=${USERNAME}:${USERNAME} /agent-server /agent-server
USER ${USERNAME}
ENTRYPOINT ["tini", "--", "/agent-server/.venv/bin/python", "-m", "openhands.agent_server"]

FROM base-image-minimal AS source-minimal
ARG USERNAME
COPY --from=builder --chown=${USERNAME}:${USERNAME} /agent-server /agent-server
USER ${USERNAME}
ENTRYPOINT ["tini", "--", "/agent-server/.venv/bin/python", "-m", "openhands.agent_server"]

FROM base-image AS binary
ARG USERNAME
COPY --from=binary-builder --chown=${USERNAME}:${USERNAME} /agent-server/dist/openhands-agent-server /usr/local/bin/openhands-agent-server
USER ${USERNAME}
ENTRYPOINT ["tini", "--", "/usr/local/bin/openhands-agent-server"]

FROM base-image-minimal AS binary-minimal
ARG USERNAME
COPY --from=binary-builder --chown=${USERNAME}:${USERNAME} /agent-server/dist/openhands-agent-server /usr/local/bin/openhands-agent-server
USER ${USERNAME}
ENTRYPOINT ["tini", "--", "/usr/local/bin/openhands-agent-server"]
LABEL org.opencontainers.image.revision='0123456789abcdef0123456789abcdef01234567' \
      dev.runtimebuild.dockerfile='x/Dockerfile@sha256:00'
