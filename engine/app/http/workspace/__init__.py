"""The workspace (``/ws/…``, ``/w/TOKEN``): its routes (``routes``), its templates (``templates/``,
rendered by ``env.workspace_env``)."""

from .routes import router

__all__ = ["router"]
