# One image for every streamrec service (worker, collector, notifier); the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamrec ./streamrec
COPY producers ./producers
COPY consumers ./consumers
COPY model ./model
RUN pip install .
RUN useradd --create-home streamrec
USER streamrec
ENTRYPOINT ["streamrec"]
CMD ["worker"]
