# One image for every process (gateway, worker, migrate, simulated provider).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY worker ./worker
COPY migrations ./migrations
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && useradd --system --uid 10001 ainfera \
    && mkdir /keys && chown ainfera /keys
USER ainfera
ENTRYPOINT ["ainfera-dispatch"]
