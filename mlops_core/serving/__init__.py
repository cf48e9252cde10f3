"""Serving: the models in production answer requests, and every answer goes back into the log.

- ``scorer``: what serves now (``Live``: the config and the loaded versions), arms, scoring a batch;
- ``router``: follows the registry (production version, deployment config) and switches without a restart;
- ``requests``: JSON records checked against the model's schema;
- ``spool``: scored rows appended to local segment files before a request is answered;
- ``loader``: moves sealed segments into the log through ingest, in the background;
- ``app``: the HTTP service (Starlette on uvicorn), its micro-batching scorer thread and metrics;
- ``batch``: scoring a CSV/Parquet file (``mlops score``).

Importing this package loads none of the HTTP stack; ``app`` and ``metrics`` do.
"""
