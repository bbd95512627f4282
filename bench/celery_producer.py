"""Celery producer for the submission benchmark: N apply_async calls of a task carrying the same
64 KiB payload as the ORFEAS benchmark, to the same RabbitMQ. Prints one JSON line.

    python3 bench/celery_producer.py N QUEUE [--confirm]

--confirm turns on publisher confirms (broker_transport_options confirm_publish), the guarantee
ORFEAS's API gives every accepted job; without it Celery publishes fire-and-forget.
"""
import base64
import json
import os
import sys
import time

from celery import Celery

n = int(sys.argv[1])
queue = sys.argv[2]
confirm = "--confirm" in sys.argv[3:]
app = Celery("bench", broker="amqp://guest:guest@127.0.0.1:5672//")
app.conf.task_default_queue = queue
app.conf.broker_transport_options = {"confirm_publish": confirm}
app.conf.task_serializer = "json"


@app.task(name="orfeas.generate")
def generate(image_b64, options):
    return None


payload = base64.b64encode(os.urandom(64 * 1024)).decode()
options = {"formats": ["glb"]}
for _ in range(50):  # warm up the connection and the channel
    generate.apply_async(args=[payload, options])
start = time.perf_counter()
for _ in range(n):
    generate.apply_async(args=[payload, options])
elapsed = time.perf_counter() - start
print(json.dumps({"impl": "celery-apply_async", "confirm_publish": confirm, "n": n,
                  "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 1),
                  "mean_ms": round(1000 * elapsed / n, 3)}))
