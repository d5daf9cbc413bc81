"""File helpers shared by the runtime and export: what counts as an image or a video, whether two
paths are one file, whether an output can be written, and writing a file atomically: under a hidden
temporary name that its run holds locked (so a later run tells a killed run's leftovers from a live
run's file), flushed to disk, then renamed onto the output (or refused, when it must not be replaced)."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_runtime.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale temporary files are then left alone
    fcntl = None  # type: ignore[assignment]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")


def _umask() -> int:
    # Read it where the kernel shows it (Linux 4.7+): setting and restoring the umask would change it,
    # for a moment, for every thread of the host process.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created private (0600); finished outputs get the usual mode for new files.
FILE_MODE = 0o666 & ~_umask()


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links); False when either cannot be resolved."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_writable(path: Path) -> None:
    """Fail early, naming the path, when ``path`` cannot be created or replaced."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        msg = f"{path}: folder {parent} does not exist"
        raise OutputError(msg)
    if not parent.is_dir():
        msg = f"{path}: {parent} is not a folder"
        raise OutputError(msg)
    if not os.access(parent, os.W_OK | os.X_OK):
        msg = f"{path}: folder {parent} is not writable"
        raise OutputError(msg)
    if path.is_dir():
        msg = f"{path}: is a folder, expected a file name"
        raise OutputError(msg)


def _partial_name(path: Path) -> str:
    return f".{path.name}."


class Partial:
    """A hidden temporary file beside ``path``, locked while this process writes it; see ``claim``.

    ``commit`` moves it onto ``path`` (refusing to replace a file that appeared meanwhile unless
    ``overwrite``), ``discard`` deletes it. The lock (``flock``) ends with the process, so a run that was
    killed leaves a temporary file that the next run on the same output recognises as stale and removes.
    """

    def __init__(self, path: Path, suffix: str = ".partial") -> None:
        self.path = path
        parent = path.parent if str(path.parent) else Path(".")
        try:
            fd, name = tempfile.mkstemp(prefix=_partial_name(path), suffix=suffix, dir=parent)
        except OSError as e:
            msg = f"{path}: cannot write in folder {parent} ({e.strerror})"
            raise OutputError(msg) from None
        self.tmp = Path(name)
        self._fd: int | None = fd
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def commit(self, overwrite: bool = True, mode: int | None = None) -> None:
        """Flush the file to disk and rename it onto ``path``; an ``OSError`` becomes an ``OutputError``."""
        try:
            if self._fd is not None:
                os.fsync(self._fd)  # delayed write errors (a full disk on ext4, NFS) show up here, not later
            os.chmod(self.tmp, FILE_MODE if mode is None else mode)
            if overwrite:
                os.replace(self.tmp, self.path)
            else:
                _link_no_clobber(self.tmp, self.path)
        except FileExistsError:
            self.discard()
            msg = (f"{self.path}: was created by something else while this run was writing it; it was kept and this "
                   "run's result was dropped (use -y to replace it)")
            raise OutputError(msg) from None
        except OSError as e:
            self.discard()
            msg = f"{self.path}: could not be written ({e.strerror or e}); nothing was replaced"
            raise OutputError(msg) from None
        self._release()

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path`` unless ``path`` exists (FileExistsError), atomically where links work."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network shares): check, then rename
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _locked(path: Path) -> bool:
    """Whether another process holds the lock of the temporary file ``path``."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def claim(path: Path, suffix: str = ".partial", overwrite: bool = True, scan: bool = True) -> Partial:
    """Start writing ``path``: refuse it when it exists (unless ``overwrite``) or another run is writing it now,
    remove temporary files that killed runs left for it, and return a locked ``Partial`` for this run.

    ``scan=False`` skips looking for other temporary files (a caller that cleaned the whole folder once).
    """
    if not overwrite and (path.exists() or path.is_symlink()):
        msg = f"{path}: already exists; use -y (--overwrite) to replace it"
        raise OutputError(msg)
    part = Partial(path, suffix)
    if fcntl is None or not scan:
        return part  # no locks to tell a live run from a dead one: leave other temporary files alone
    try:
        mine = os.stat(part.tmp).st_ctime_ns, part.tmp.name
        parent = path.parent if str(path.parent) else Path(".")
        for other in parent.glob(glob.escape(_partial_name(path)) + "*.partial*"):
            if other.name == part.tmp.name:
                continue
            if not _locked(other):
                other.unlink(missing_ok=True)  # left by a run that was killed
                continue
            with contextlib.suppress(OSError):
                # Two runs starting together both see the other: the earlier one goes on, the later one stops.
                if (os.stat(other).st_ctime_ns, other.name) > mine:
                    continue
            msg = (f"{path}: another edge-ae run is writing this output now ({other.name}); wait for it to finish "
                   "or choose another output")
            raise OutputError(msg)
    except BaseException:
        part.discard()
        raise
    return part


def remove_stale_partials(folder: Path) -> None:
    """Remove the temporary files that killed runs left in ``folder`` (those no live run holds)."""
    if fcntl is None:
        return
    with contextlib.suppress(OSError):
        for other in folder.glob(".*.partial*"):
            if other.is_file() and not _locked(other):
                other.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".partial", mode: int | None = None, overwrite: bool = True,
                scan: bool = True) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; on success it is flushed to disk and renamed onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was. An ``OSError``
    (disk full, I/O error) becomes an ``OutputError`` naming ``path`` and the cause. The finished
    file gets ``mode``, by default the usual mode for new files. Unless ``overwrite``, an existing
    ``path`` is refused (before and after the write). ``scan``: see ``claim``.
    """
    path = Path(path)
    part = claim(path, suffix, overwrite, scan)
    try:
        yield part.tmp
    except OSError as e:
        part.discard()
        msg = f"{path}: could not be written ({e.strerror or e}); nothing was replaced"
        raise OutputError(msg) from None
    except BaseException:
        part.discard()
        raise
    part.commit(overwrite, mode)


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file, flushed to disk before the rename (unless ``overwrite``,
    an existing ``path`` is refused, also one that appears meanwhile)."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
        f.write(data)
