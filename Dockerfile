# Routiq Pipeline image. Until `routiq serve` lands, a container runs one command (migrate, sync, dlq …) and exits;
# schedule `sync` with a cron/Kubernetes CronJob. TypeScript runs through tsx (no build step), as in development.
FROM node:22-bookworm-slim AS deps
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
RUN npm ci --no-audit --no-fund

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production ROUTIQ_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# Never run as root; the embedded database (if used without DATABASE_URL) lives in /app/.routiq.
RUN mkdir -p /app/.routiq && chown -R node:node /app/.routiq
USER node
# Node is PID 1 only through --init / tini in the orchestrator; signals reach node directly (no npm wrapper).
ENTRYPOINT ["node", "cli/bin/routiq.mjs"]
CMD ["sync"]
