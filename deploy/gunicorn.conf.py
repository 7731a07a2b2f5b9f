# Gunicorn serves HTTP (portal, API, ingestion) with sync workers: on 2 cores this
# is about twice the throughput of Django's ASGI handler (../docs/adr/0001).
import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = 30
graceful_timeout = 10
accesslog = None
errorlog = "-"
