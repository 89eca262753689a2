# The ledger's own commands (relay, consume, reports) in a container, for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md bootstrap.py ./
COPY domain domain
COPY service_layer service_layer
COPY adapters adapters
COPY projections projections
COPY consumers consumers
COPY cli cli
COPY transparency transparency
COPY benchmarks benchmarks
RUN pip install --no-cache-dir .
ENTRYPOINT ["ledger"]
