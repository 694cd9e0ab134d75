# One image for every Node process of payment-orchestrator (api, worker, sandbox-psp, migrate);
# docker-compose.yml picks the process with `command`. There is no build step: tsx runs the
# TypeScript sources directly, so the image only needs the sources and the runtime dependencies.
#
# bookworm (glibc), not alpine: @temporalio/core-bridge ships prebuilt native binaries for glibc.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

WORKDIR /app

# Manifests first, so the dependency layer is reused until package*.json change.
# --omit=dev: tsx is a runtime dependency; typescript, jest, eslint and swc are not needed here.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# tsconfig.json is read by tsx at run time (module settings); migrations are .ts files run by knex.
COPY tsconfig.json ./
COPY migrations ./migrations
COPY src ./src
# The sandbox PSP is a package of its own beside the product; the same image runs it.
COPY packages ./packages

# The files stay owned by root, so the process cannot rewrite its own code.
USER node

# api 3000, sandbox-psp 3100 (documentation only; compose publishes what it needs).
EXPOSE 3000 3100

# No HEALTHCHECK here: the same image runs the worker and the one-shot migrate job, which serve no
# /healthz. docker-compose.yml declares a health check per service instead.
CMD ["npx", "tsx", "src/api/main.ts"]
