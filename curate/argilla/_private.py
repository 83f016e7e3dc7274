"""Files only their owner may read: the local server's data folder, its log and the generated owner secrets.

The database under the data folder holds the owner's API key in plain text, so the folder is
created 0700 and the launcher creates every file in it 0600 (umask 077). A key or password that
``curate argilla serve`` generated is kept in a 0600 file there instead of being printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

KEY_FILE = "owner-api-key"
PASSWORD_FILE = "owner-password"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing folder keeps its mode."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    return path


def open_private(path: Path) -> IO[str]:
    """``open(path, "w")``, but a new file is created 0600 and an existing one is made 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w")


@dataclass(frozen=True)
class OwnerSecretFiles:
    """Where the generated owner secrets are kept; ``None`` where the user gave the value or none was kept."""

    key_file: Path | None
    password_file: Path | None


def keep_owner_secrets(
    data_dir: Path, *, applied: bool, generated_key: str | None, generated_password: str | None
) -> OwnerSecretFiles:
    """Keep generated owner secrets in 0600 files under ``data_dir``, remove stale ones, say where they are.

    Parameters
    ----------
    data_dir
        The server's data folder.
    applied
        True when the server now uses the secrets passed to it (owner created, or reset);
        False when it kept its stored ones: files are only reported, never written.
    generated_key, generated_password
        The value curate generated; ``None`` when the user gave it (a file kept from an earlier
        generated value no longer holds the secret in use and is removed).
    """
    found: list[Path | None] = []
    for name, generated in ((KEY_FILE, generated_key), (PASSWORD_FILE, generated_password)):
        path = data_dir / name
        if applied and generated is None:
            path.unlink(missing_ok=True)
        elif applied:
            with open_private(path) as out:
                out.write(generated + "\n")
        found.append(path if path.is_file() else None)
    return OwnerSecretFiles(*found)
