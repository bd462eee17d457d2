"""Errors the ``trilemma`` entry point reports without a traceback, defined without torch so that
``cli.main`` can catch them while running a torch-free verb (``check-config``, ``dvc-yaml``)."""
from __future__ import annotations


class ArtifactError(RuntimeError):
    """A missing, truncated or foreign artifact file."""
