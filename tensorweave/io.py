"""File IO every writer shares: atomic file writes and whole-directory transactions.

Invariants (spec/reliability.md):

- A file is written to a temporary sibling (``.<name>.tw-tmp-*``), flushed, and renamed over
  the target: a reader sees the old file or the new one, never a half-written one.
- A directory artefact (an export folder, a SavedModel, an ONNX model with its external data)
  is written whole into a fresh sibling directory, then swapped in with one rename; the
  previous artefact stays loadable until that rename.
- A temporary file or directory is removed on any failure, Ctrl-C included.
- A directory is replaced only when it holds tensorweave's manifest (``tensorweave.json``), i.e.
  when tensorweave wrote it; a non-empty directory without it is refused with a message naming
  what is there. Nothing the library did not write is ever deleted or overwritten.

This module imports only :mod:`tensorweave.errors`, so every room may use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

from .errors import ArtefactError

MANIFEST = "tensorweave.json"
TMP_MARK = ".tw-tmp-"


def _tmp_prefix(path: str) -> str:
    """``.<name>.tw-tmp-<pid>-``: the writer's process id is in the name, so that a later export
    can tell a temporary left by a killed process (:func:`sweep_stale`) from one in progress."""
    return f".{os.path.basename(os.path.normpath(path))}{TMP_MARK}{os.getpid()}-"


tmp_prefix = _tmp_prefix


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True


def sweep_stale(path: str) -> list[str]:
    """Remove the temporary siblings of ``path`` (``.<name>.tw-tmp-<pid>-*``) whose writer process
    is gone (SIGKILL, power loss). Only names tensorweave makes are touched, and only when the
    process id in the name is no longer running; returns the names removed."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(os.path.normpath(path))}{TMP_MARK}"
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        full = os.path.join(parent, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            removed.append(name)
        except OSError:
            pass
    return removed


def check_writable(path: str) -> str:
    """Check, without creating anything, that ``path`` can be written: its nearest existing
    ancestor is a writable directory. Returns the parent directory ``path`` will live in."""
    parent = os.path.dirname(os.path.abspath(path))
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ArtefactError(f"cannot write {path}: {probe} is a file, not a directory; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ArtefactError(f"cannot write {path}: {probe} is not writable; choose a writable directory")
    return parent


def writable_parent(path: str) -> str:
    """The directory that will hold ``path``, created if missing; an error naming it when it
    cannot be written (:func:`check_writable`)."""
    parent = check_writable(path)
    os.makedirs(parent, exist_ok=True)
    return parent


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once at import (os.umask is process-wide, not thread-safe to probe later)


def atomic_write(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` through a temporary sibling and one rename; returns ``path``."""
    parent = writable_parent(path)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=_tmp_prefix(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str, obj: Any) -> str:
    """``obj`` as indented, key-sorted JSON, written atomically."""
    return atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: str, settings: dict | None = None) -> dict:
    """Record every file under ``directory`` (size and sha256) and ``settings`` in its manifest."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, directory)
            if rel == MANIFEST:
                continue
            files[rel] = {"size": os.path.getsize(full), "sha256": sha256(full)}
    manifest = {"format": "tensorweave-artefact", "version": 1, "files": files, "settings": settings or {}}
    atomic_write_json(os.path.join(directory, MANIFEST), manifest)
    return manifest


def read_manifest(directory: str, verify: bool = True) -> dict:
    """The manifest of an artefact directory; with ``verify`` every listed file must exist with
    its recorded size and hash (a stale or mixed artefact is an error, never a silent mix)."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ArtefactError(
            f"{directory} has no {MANIFEST}: not a tensorweave artefact; export it again"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtefactError(f"{path} is not valid JSON ({e}); export the artefact again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtefactError(f"{path} is not a tensorweave manifest; export the artefact again")
    if verify:
        for rel, meta in manifest["files"].items():
            full = os.path.join(directory, rel)
            if os.path.isabs(rel) or os.path.normpath(rel).startswith(".."):
                raise ArtefactError(f"{path} lists {rel!r}, outside the artefact; export it again")
            if not os.path.isfile(full):
                raise ArtefactError(f"{directory} is incomplete: {rel} is missing; export it again")
            if (
                not isinstance(meta, dict)
                or os.path.getsize(full) != meta.get("size")
                or sha256(full) != meta.get("sha256")
            ):
                raise ArtefactError(
                    f"{directory}: {rel} does not match the manifest (a stale or mixed artefact); export it again"
                )
    return manifest


def is_ours(directory: str) -> bool:
    """True when ``directory`` is a tensorweave artefact (holds the manifest)."""
    return os.path.isfile(os.path.join(directory, MANIFEST))


def check_replaceable(directory: str) -> None:
    """Refuse to replace an existing directory tensorweave did not write (before any work)."""
    if os.path.isfile(directory):
        raise ArtefactError(f"{directory} is a file; pass a directory path (or remove the file yourself)")
    if os.path.isdir(directory) and os.listdir(directory) and not is_ours(directory):
        names = sorted(os.listdir(directory))
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ArtefactError(
            f"{directory} is not empty and was not written by tensorweave ({shown}); "
            "choose a new or empty directory"
        )


_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


@contextlib.contextmanager
def staged_directory(directory: str, settings: dict | None = None, check: Any = None) -> Iterator[str]:
    """Yield a fresh temporary sibling of ``directory`` to write an artefact into; on success
    run ``check(tmp)`` (validation of the staged artefact; an exception aborts), write its
    manifest and swap it in with one rename (an atomic exchange with the previous
    artefact where the OS offers it), then remove the previous one. On any failure the
    temporary directory is removed and ``directory`` is untouched."""
    directory = os.path.abspath(directory)
    check_replaceable(directory)
    parent = writable_parent(directory)
    sweep_stale(directory)
    tmp = tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(directory))
    try:
        yield tmp
        if check is not None:
            check(tmp)
        write_manifest(tmp, settings)
        if not os.path.exists(directory):
            os.rename(tmp, directory)
        elif os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)
            os.rename(tmp, directory)
        elif _exchange(tmp, directory):
            shutil.rmtree(tmp)  # now holds the previous artefact
        else:  # no atomic exchange: move the old one aside, then the new one in
            old = tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(directory))
            os.rmdir(old)
            os.rename(directory, old)
            try:
                os.rename(tmp, directory)
            except BaseException:
                os.rename(old, directory)
                raise
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def leftovers(directory: str) -> list[str]:
    """Temporary files or directories a writer left in ``directory`` (none, after any run)."""
    try:
        return sorted(n for n in os.listdir(directory) if TMP_MARK in n)
    except FileNotFoundError:
        return []


def manifest_sha256(directory: str) -> str:
    """The sha256 of a directory artefact's manifest: one hash that pins every file in it."""
    return sha256(os.path.join(directory, MANIFEST))


def verify_member(path: str) -> None:
    """When ``path`` (a file) lies in a directory whose manifest lists it, check the whole
    directory against the manifest (a stale or mixed export is an error); otherwise nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    if not is_ours(directory):
        return
    manifest = read_manifest(directory, verify=False)
    if os.path.basename(path) in manifest.get("files", {}):
        read_manifest(directory, verify=True)


@contextlib.contextmanager
def staged_files(paths: list[str]) -> Iterator[dict[str, str]]:
    """A transaction over sibling files (an artefact named by the caller and its side files):
    yields ``{final path: temporary path}``, all in one fresh temporary sibling directory; on
    success each is renamed into place in the given order (put the file that pins the others,
    e.g. by hash, last); on any failure, Ctrl-C included, the temporaries are removed and the
    targets are untouched. Each rename is atomic; the group is checked on load by hashes."""
    paths = [os.path.abspath(p) for p in paths]
    parent = writable_parent(paths[0])
    for p in paths:
        if os.path.isdir(p):
            raise ArtefactError(f"{p} is a directory; name a file (or pass the directory as the output)")
        sweep_stale(p)
    tmp = tempfile.mkdtemp(dir=parent, prefix=_tmp_prefix(paths[0]))
    try:
        staged = {p: os.path.join(tmp, os.path.basename(p)) for p in paths}
        yield staged
        for p in paths:
            if os.path.exists(staged[p]):
                with contextlib.suppress(OSError):
                    os.chmod(staged[p], 0o666 & ~_UMASK)
                os.replace(staged[p], p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
