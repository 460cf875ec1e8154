"""The status board's chart (``svg``) and page templates; what its pages show is read by
``engine.issues.board`` and the pages are served by the HTTP application (``engine.app.http.pages``)."""
