"""The status board: what its pages show (``data``) and its chart (``svg``); the pages themselves
are served by the HTTP application (``engine.app.http.pages``)."""
