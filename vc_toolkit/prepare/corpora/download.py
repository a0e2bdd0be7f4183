"""Fetch and unpack a corpus archive, failing with one clear line when offline."""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from vc_toolkit.prepare.corpora.base import CorpusError


def fetch_and_extract(url: str, dest: Path, what: str, timeout: float = 20.0) -> None:
    """Download ``url`` into ``dest.parent`` and unpack it there.

    Raises:
        CorpusError: the URL is empty or unreachable, or the archive is not zip/tar.
    """
    if not url:
        raise CorpusError(
            f"{what} not found at {dest} and no download URL is set; "
            f"download it yourself, unpack it, and point the spk config at the folder"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.parent / Path(url.split("?")[0]).name
    part = archive.with_name(archive.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {what}") as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise CorpusError(
            f"cannot download {what} from {url} ({reason}); this machine may be offline: "
            f"download it elsewhere, unpack it to {dest}, and re-run"
        ) from None
    part.rename(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest.parent)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            t.extractall(dest.parent, filter="data")
    else:
        raise CorpusError(f"{archive} is neither zip nor tar; unpack it to {dest} yourself")
    if not dest.is_dir():
        found = [p.name for p in dest.parent.iterdir() if p.is_dir()]
        shutil.rmtree(dest, ignore_errors=True)
        raise CorpusError(
            f"unpacked {archive.name} but {dest} does not exist (folders there: {found}); "
            "fix the root in the spk config"
        )
