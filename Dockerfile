# One image for every process type; the command picks the role:
#   web:    gunicorn incident_manager.wsgi -c deploy/gunicorn.conf.py -b 0.0.0.0:8000
#   ws:     uvicorn incident_manager.asgi:application --host 0.0.0.0 --port 8001   (DATABASE_POOL=1)
#   worker: celery -A incident_manager worker -l info
#   beat:   celery -A incident_manager beat -l info
# It needs DATABASE_URL (PostgreSQL with pgvector), REDIS_URL, SECRET_KEY and ENCRYPTION_KEYS.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements/ requirements/
# production.txt, not base.txt: the embedded PostgreSQL and Redis and the process
# manager of `make run` have no place in a deployment, nor the test tools of dev.txt.
RUN pip install --no-cache-dir -r requirements/production.txt

COPY . .
RUN useradd --system --uid 10001 app \
 && SECRET_KEY=build DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost \
    ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    python manage.py collectstatic --noinput \
 && chown -R app /app/var
USER app

EXPOSE 8000 8001
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn incident_manager.wsgi -c deploy/gunicorn.conf.py -b 0.0.0.0:8000"]
