"""The HTTP side: one FastAPI application (``app``) served by uvicorn (``server``)."""
