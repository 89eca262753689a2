"""Files the command line writes: each is written whole under a temporary name and renamed, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click


def write_whole(path: Path, text: str, *, what: str, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write `text` to `path` so that a failure (a full disk, a missing folder) leaves nothing behind; `exclusive`
    refuses to replace an existing file. Raises one ClickException that names `what`, the path and the reason."""
    folder = path.parent
    if not folder.is_dir():
        raise click.ClickException(f"{what}: {str(path)!r}: folder {str(folder)!r} does not exist; nothing was written")
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise click.ClickException(f"{what}: {str(path)!r}: {error.strerror or error}; nothing was written") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if exclusive:
            os.link(temporary, path)  # fails if the name was taken meanwhile, unlike a rename
        else:
            os.replace(temporary, path)
    except FileExistsError:
        raise click.ClickException(f"{what}: {str(path)!r} already exists; it is never overwritten") from None
    except OSError as error:
        raise click.ClickException(f"{what}: {str(path)!r}: {error.strerror or error}; nothing was written") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file given on the command line; one ClickException naming `what`, the path and the reason otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"{what}: {str(path)!r}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{what}: {str(path)!r}: not UTF-8 text") from None
