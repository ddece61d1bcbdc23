# syntax=docker/dockerfile:1
#
# Two images, built by docker-compose.yml:
#   target app        every Node service (router, rag, chat, exam, tasks, workers, migrations),
#                     each started with its own command; non-root, production dependencies only,
#                     with tesseract (English) and poppler-utils for OCR of scanned pages;
#   target pgbouncer  PgBouncer from Debian's package: the same PgBouncer and the same
#                     config/pgbouncer.ini as npm run dev and the tests.
#
# The services run their TypeScript sources through tsx (a production dependency), as in
# development and in the tests. Node 20, the version the tests run on.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- every dependency (the Prisma client is generated with the prisma CLI, a devDependency)
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY prisma ./prisma
COPY prisma.config.ts tsconfig.json ./
COPY lib ./lib
RUN node node_modules/prisma/build/index.js generate

# ---- production dependencies only
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- the services
FROM ${NODE_IMAGE} AS app
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates tesseract-ocr tesseract-ocr-eng poppler-utils \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY schema ./schema
COPY lib ./lib
COPY --from=build /app/lib/db/generated ./lib/db/generated
COPY router ./router
COPY subgraphs ./subgraphs
COPY workers ./workers
COPY scripts/secrets.ts ./scripts/secrets.ts
# The blob store: a volume shared by the router, rag and the workers (and read by nginx).
RUN mkdir -p /data/blobs && chown node:node /data/blobs
USER node
EXPOSE 4000
# /ready: the service's dependencies answer and it is not draining. PORT is each service's own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "router/src/index.ts"]

# ---- PgBouncer
FROM debian:bookworm-slim AS pgbouncer
RUN apt-get update \
  && apt-get install -y --no-install-recommends pgbouncer postgresql-client \
  && rm -rf /var/lib/apt/lists/*
USER postgres
EXPOSE 6432
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["pg_isready", "-h", "127.0.0.1", "-p", "6432"]
CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
