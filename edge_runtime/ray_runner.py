"""A batch of videos on Ray: one actor per worker holds one model, and each video is one task, whole (in order,
with its audio; Ray Data's frame readers would lose both). Needs the ``[ray]`` extra; nothing here imports Ray
until a run starts.

Inputs and outputs must be at the same paths on every node (a shared file system); the model is shipped to the
workers through Ray's object store. A failed item is retried once, on any worker, then reported; it never stops the
rest. Ctrl-C cancels the items in flight (their unfinished outputs are removed) and keeps every finished one.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.archive import ItemResult, denoise_item, pin_threads, worker_name
from edge_runtime.batch import BatchItem
from edge_runtime.errors import EdgeAEError
from edge_runtime.files import remove_stale_partials
from edge_runtime.media import Encoding


class RayError(EdgeAEError):
    """Ray is missing, the cluster cannot be reached, or the workers cannot start."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        from edge_runtime.install import pip_install

        msg = f"Ray is not installed; add the [ray] extra: {pip_install('ray')} (in a clone: pip install '.[ray]')"
        raise RayError(msg) from None
    return ray


@dataclass(frozen=True)
class WorkerSpec:
    """What each worker loads and how it runs an item."""

    model_name: str  # file name of the model (kept, so reports name it)
    device: str = "auto"
    threads: int = 1
    tile: int | None = 2048
    audio: bool = True
    max_frames: int | None = None
    encoding: Encoding | None = None
    overwrite: bool = True
    strength: float = 1.0
    temporal: bool = True
    # a bundled model's name: each worker loads its own copy (on CUDA its fp16 frame variant, and for the video
    # model the single-frame one while the camera moves), as a local run does; None: the bytes sent
    bundled: str | None = None
    follow_camera: bool = True


class DenoiseWorker:
    """A Ray actor: one Denoiser, loaded once, for many videos."""

    def __init__(self, spec: WorkerSpec, model_bytes: bytes) -> None:
        from edge_runtime.denoiser import Denoiser

        self.spec = spec
        self.dir = tempfile.TemporaryDirectory(prefix="edge-ae-ray-")
        model: str | Path = Path(self.dir.name) / spec.model_name
        if spec.bundled is not None:
            model = spec.bundled
        else:
            Path(model).write_bytes(model_bytes)
        pin_threads(spec.threads)
        self.denoiser = Denoiser(model, device=spec.device, threads=spec.threads, tile=spec.tile,
                                 strength=spec.strength, temporal=spec.temporal,
                                 moving_camera="auto" if spec.follow_camera else None)

    def ready(self) -> str:
        return f"{worker_name()} ({self.denoiser.model.provider})"

    def run(self, source: str, output: str, attempt: int) -> dict[str, Any]:
        s = self.spec
        process = self.denoiser.stream().denoise  # one video's frames: a fresh stream (a recurrent model's state)
        result = denoise_item(BatchItem(Path(source), Path(output)), process, audio=s.audio,
                              max_frames=s.max_frames, encoding=s.encoding, overwrite=s.overwrite,
                              threads=s.threads, handle_signals=False)
        result.attempts = attempt
        return result.__dict__


def connect(address: str | None) -> Any:
    """Join the Ray cluster at ``address`` ('auto': the one running on this machine), or start a local one."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="error",
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            msg = f"Ray at {address or 'a new local cluster'}: cannot connect ({str(e).splitlines()[0]})"
            raise RayError(msg) from None
    return ray


def run_on_ray(items: Sequence[BatchItem], model: Path, spec: WorkerSpec, address: str | None = None,
               workers: int | None = None, on_ready: Callable[[list[str]], None] | None = None,
               on_done: Callable[[ItemResult], None] | None = None) -> tuple[list[ItemResult], bool]:
    """Denoise ``items`` on Ray workers; (the results in the order they finished, whether Ctrl-C stopped it).

    ``workers``: actors to start (at most, and by default, the cluster's CPUs / ``spec.threads``), each reserving
    ``spec.threads`` CPUs and, where the cluster has GPUs and ``spec.device`` is not cpu, an equal share of them.
    ``on_done`` hears of each item as it finishes (write the manifest there).
    """
    ray = connect(address)
    started = time.time()
    total = ray.cluster_resources()
    cpus = int(total.get("CPU", 1))
    if spec.threads > cpus:
        msg = f"--threads {spec.threads}: the Ray cluster has {cpus} CPUs; give at most {cpus} threads per worker"
        raise RayError(msg)
    fits = max(1, cpus // spec.threads)  # more actors than that would wait for CPUs that never come free
    n = max(1, min(workers or fits, fits, len(items)))
    gpus = float(total.get("GPU", 0)) if spec.device != "cpu" else 0.0
    per_gpu = min(1.0, gpus / n) if gpus else 0.0
    actor_cls = ray.remote(num_cpus=spec.threads, num_gpus=per_gpu)(DenoiseWorker)
    blob = ray.put(model.read_bytes())
    actors: list[Any] = []
    results: list[ItemResult] = []
    inflight: dict[Any, tuple[Any, BatchItem, int]] = {}
    todo: deque[tuple[BatchItem, int]] = deque((item, 1) for item in items)

    def start_actor() -> Any:
        actor = actor_cls.remote(spec, blob)
        actors.append(actor)
        return actor

    def submit(actor: Any) -> None:
        if todo:
            item, attempt = todo.popleft()
            inflight[actor.run.remote(str(item.source), str(item.output), attempt)] = (actor, item, attempt)

    try:
        fresh = [start_actor() for _ in range(n)]
        try:
            names = ray.get([a.ready.remote() for a in fresh])
        except ray.exceptions.RayError as e:
            msg = f"Ray workers could not load the model: {_first_line(e)}"
            raise RayError(msg) from None
        if on_ready is not None:
            on_ready(names)
        for actor in fresh:
            submit(actor)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            actor, item, attempt = inflight.pop(ready[0])
            try:
                result = ItemResult.from_dict(ray.get(ready[0]))
            except ray.exceptions.RayError as e:  # the worker died (killed, out of memory) or the task raised
                result = ItemResult(str(item.source), str(item.output), "failed", attempts=attempt,
                                    error=f"worker failed: {_first_line(e)}")
                ray.kill(actor)
                actors.remove(actor)
                actor = start_actor()
            if result.status == "failed" and attempt == 1:
                todo.appendleft((item, 2))
            else:
                results.append(result)
                if on_done is not None:
                    on_done(result)
            submit(actor)
    except KeyboardInterrupt:
        for actor in actors:
            ray.kill(actor)
        # First let the killed workers' temporary files go, so an output is either complete or absent.
        _remove_unfinished([item for _, item, _ in inflight.values()])
        for _, item, attempt in inflight.values():
            result = _cancelled(item, attempt, started)
            results.append(result)
            if on_done is not None:
                on_done(result)
        return results, True
    finally:
        for actor in actors:
            ray.kill(actor)
    return results, False


def _cancelled(item: BatchItem, attempt: int, started: float) -> ItemResult:
    """The result of an item in flight when Ctrl-C came: done if its worker renamed a complete output into place
    before it was killed (outputs are written whole or not at all), else cancelled."""
    try:
        finished = item.output.stat().st_mtime >= started
    except OSError:
        finished = False
    if finished:
        from edge_runtime.media import probe

        info = probe(item.output)
        return ItemResult(str(item.source), str(item.output), "done", frames=info.frames if info else 0,
                          attempts=attempt, finished=time.time(),
                          notes=["finished as Ctrl-C cancelled the rest"])
    return ItemResult(str(item.source), str(item.output), "cancelled", attempts=attempt, signal="SIGINT")


def _remove_unfinished(items: Sequence[BatchItem], wait: float = 5.0) -> None:
    """Remove the temporary files of killed workers (a file is left while its dead writer's lock lingers)."""
    folders = {item.output.parent for item in items}
    deadline = time.monotonic() + wait
    while folders and time.monotonic() < deadline:
        for folder in list(folders):
            remove_stale_partials(folder)
            if not any(folder.glob(".*.partial*")):
                folders.discard(folder)
        time.sleep(0.2)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if "Error" in ln), lines[0] if lines else type(e).__name__)
