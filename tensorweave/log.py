"""Feedback while tensorweave works: the ``tensorweave`` logger, verbosity, progress bars, and
frameworks kept quiet.

- Messages go to the standard ``logging`` logger ``"tensorweave"`` (and its children).
- Verbosity: :func:`set_verbosity` (``"error"``, ``"warning"`` — the default —, ``"info"``,
  ``"debug"``), or the ``TENSORWEAVE_VERBOSITY`` environment variable read at import. At
  ``"info"`` and above, slow steps (loading weights, tracing + compiling a new program, exporting)
  log one line each with the time they took.
- Progress bars (tqdm) while weights load, a new program traces and compiles (its description says
  why it compiles), tokens are generated (tokens/s) and an export runs: shown when stderr is a
  terminal, at every verbosity but ``"error"``, unless turned off with
  :func:`disable_progress_bars` or ``TENSORWEAVE_PROGRESS=0`` (as Hugging Face's bars are).
- Frameworks are quiet by default: TensorFlow's C++ and absl start-up lines (printed straight to
  file descriptor 2, before any Python logging is set up) are captured while the framework is
  imported through :func:`quiet_import` and logged at debug level instead; ONNX Runtime's and
  absl's Python loggers are set to errors only. At ``"debug"`` verbosity nothing is hidden.

A leaf module: imports only the standard library (tqdm lazily, when installed).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
import time
from types import ModuleType
from typing import Any, Iterable, Iterator

logger = logging.getLogger("tensorweave")

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
ENV = "TENSORWEAVE_VERBOSITY"
PROGRESS_ENV = "TENSORWEAVE_PROGRESS"
_handler: logging.Handler | None = None
_bars = os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    key = str(value).strip().lower()
    if key not in LEVELS:
        raise ValueError(f"unknown verbosity {value!r}; choose one of {', '.join(LEVELS)} (or set {ENV})")
    return LEVELS[key]


def set_verbosity(level: Any) -> None:
    """Set how much tensorweave says on stderr: ``"error"``, ``"warning"``, ``"info"`` or ``"debug"``."""
    global _handler
    logger.setLevel(_level(level))
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("[tensorweave] %(message)s"))
        logger.addHandler(_handler)
        logger.propagate = False


def get_verbosity() -> int:
    return logger.getEffectiveLevel()


def is_verbose() -> bool:
    return logger.isEnabledFor(logging.INFO)


@contextlib.contextmanager
def timed(what: str, level: int = logging.INFO) -> Iterator[None]:
    """Log ``what`` when it starts (debug) and when it ends, with the seconds it took."""
    logger.debug("%s ...", what)
    start = time.perf_counter()
    yield
    logger.log(level, "%s: %.1f s", what, time.perf_counter() - start)


def enable_progress_bars() -> None:
    """Show progress bars (the default when stderr is a terminal)."""
    global _bars
    _bars = True


def disable_progress_bars() -> None:
    """Never show progress bars (also ``TENSORWEAVE_PROGRESS=0``)."""
    global _bars
    _bars = False


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bars_enabled() -> bool:
    """Bars on, verbosity not ``"error"`` and stderr a terminal."""
    return _bars and logger.isEnabledFor(logging.WARNING) and _stderr_is_terminal()


def progress(
    iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it"
) -> Any:
    """A tqdm bar when :func:`progress_bars_enabled` (and tqdm is installed), else the iterable
    itself (or, without one, a no-op object with ``update`` / ``set_postfix_str`` / ``close``)."""
    if progress_bars_enabled():
        try:
            from tqdm.auto import tqdm

            return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
        except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
            pass
    return iterable if iterable is not None else NoBar()


class NoBar:
    def __enter__(self) -> "NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_description_str(self, s: str) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 during the block (Python's own
    ``sys.stderr`` writes too); the lines are in the yielded list afterwards."""
    lines: list[str] = []
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. captured by a test runner)
        yield lines
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def quiet_import(name: str) -> ModuleType:
    """Import a framework module with its start-up noise logged at debug level instead of printed
    (everything passes through at debug verbosity). Already-imported modules return at once."""
    if name in sys.modules:
        return sys.modules[name]
    if logger.isEnabledFor(logging.DEBUG):
        return importlib.import_module(name)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ errors too: real failures raise in Python
    with captured_stderr_fd() as lines:
        module = importlib.import_module(name)
    for line in lines:
        logger.debug("%s: %s", name, line)
    if name.split(".")[0] in ("tensorflow", "keras"):
        with contextlib.suppress(Exception):
            logging.getLogger("absl").setLevel(logging.ERROR)
            module_tf = sys.modules.get("tensorflow")
            if module_tf is not None:
                module_tf.get_logger().setLevel(logging.ERROR)
    if name.split(".")[0] == "onnxruntime":
        with contextlib.suppress(Exception):
            module.set_default_logger_severity(3)
    return module


try:
    set_verbosity(os.environ.get(ENV, "warning"))
except ValueError as _e:
    set_verbosity("warning")
    logger.warning("%s; using 'warning'", _e)
