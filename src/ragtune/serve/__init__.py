"""`ragtune serve`: the retrieve → screen → generate path behind an OpenAI-compatible HTTP API.

Build the app with `ragtune.serve.app.create_app(ServeSettings(...))`; importing this package starts nothing
and imports neither FastAPI nor torch.
"""
