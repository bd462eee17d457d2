"""Fetch a dataset file from its official URL when no local copy is there (``data.<name>.download``).

The transfer is torchvision's ``download_url`` (redirects, a progress bar, the md5 check when one is
given).  Around it: a socket timeout, so that a network that drops packets fails instead of hanging;
a ``.part`` name until the transfer is complete, so a killed job never leaves a truncated file under
the final name; and one error, naming the URL and how to supply the file by hand, for every failure
(no network, HTTP error, wrong md5).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from trilemma.data.images import DataSourceError

TIMEOUT_S = 60


def download(url: str, dest, md5: str | None, how_to: str) -> Path:
    """``url`` -> ``dest`` (its md5 checked when given); ``how_to`` ends the error message."""
    from torchvision.datasets.utils import download_url

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)
    print(f"downloading {url} -> {dest}", flush=True)
    try:
        download_url(url, str(dest.parent), part.name, md5)
    except (OSError, RuntimeError, ValueError) as exc:   # URLError is an OSError; a wrong md5 a RuntimeError
        part.unlink(missing_ok=True)
        raise DataSourceError(f"could not download {url} to {dest} ({exc}); {how_to}") from None
    finally:
        socket.setdefaulttimeout(old)
    os.replace(part, dest)
    return dest
