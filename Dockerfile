# Routiq Pipeline image. The default command is `routiq serve` (webhooks, schedules, health, metrics; docs/service.md);
# one-off commands (migrate, sync, dlq …) run with the same image and another command. The CLI runs as JavaScript compiled in the build stage
# (cli/build.mjs --production); the final image holds production dependencies only: no tsx, esbuild, test tools or
# simulators (`routiq demo` says it is not available here).
FROM node:22-bookworm-slim AS manifests
WORKDIR /app
ENV npm_config_update_notifier=false
COPY package.json package-lock.json ./
COPY schemas/package.json schemas/
COPY sdk/package.json sdk/
COPY migrations/package.json migrations/
COPY runner/package.json runner/
COPY connectors/package.json connectors/
COPY cli/package.json cli/
COPY examples/sandbox/package.json examples/sandbox/

# Every dependency, to compile. --ignore-scripts: the root `prepare` build needs the sources, copied after this layer.
FROM manifests AS build
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN node cli/build.mjs --production

# Production dependencies only (no dependency of the project has an install script that production needs). The
# simulators' workspace is dev-only: without its folder npm ci skips it and its dependencies.
FROM manifests AS prod-deps
RUN rm -rf examples/sandbox && npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# Development image for local trials (compose's `demo`): every dependency, the simulators included.
FROM build AS dev
# The build stage compiled for production (no simulators): compile again with the dev-only packages.
RUN node cli/build.mjs
ENTRYPOINT ["node", "cli/bin/routiq.mjs"]
CMD ["demo", "--serve"]

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production ROUTIQ_ENV=production
# V8's young generation at 64 MB a semi-space instead of 16: a sync's per-record garbage (pages, rows, SQL text)
# then dies young instead of being promoted; the bench counted ~3x fewer scavenges, for up to ~96 MB more peak RSS.
# NODE_OPTIONS, not a flag in ENTRYPOINT, so that every node this image starts gets it (railway.toml's
# startCommand, compose's commands); V8 reads it at start only (v8.setFlagsFromString later has no effect).
ENV NODE_OPTIONS=--max-semi-space-size=64
COPY --from=prod-deps /app/node_modules ./node_modules
# Sources stay next to the build: schemas, connector specs and config are read at run time, and the bin checks the
# build against them (cli/dist/manifest.json).
COPY . .
COPY --from=build /app/cli/dist ./cli/dist
# No simulators or tests in production; the sandbox's package.json stays (the build fingerprints every workspace).
RUN rm -rf examples/sandbox/src test
# Never run as root; the embedded database (if used without DATABASE_URL) lives in /app/.routiq.
RUN mkdir -p /app/.routiq && chown -R node:node /app/.routiq
USER node
# Node is PID 1 only through --init / tini in the orchestrator; signals reach node directly (no npm wrapper).
ENTRYPOINT ["node", "cli/bin/routiq.mjs"]
CMD ["serve"]
EXPOSE 8080
# Ready = database reachable, migrations current, queue running (503 while draining). Node's fetch: no curl needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
