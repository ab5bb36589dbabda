# The fieldops image: one program, every role (`fieldops start --role …`).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY . .
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
EXPOSE 8080 8081 1883
ENTRYPOINT ["node", "bin/fieldops.js"]
CMD ["start"]
