"""Everything the service loads once at start-up, and the threads that use it.

- decoding and detection run in the default thread pool (several at once);
- embedding runs on the micro-batcher's one thread (see ``service.batcher``);
- writes to the gallery run on one writer thread, so they are serialised and a duplicate
  check and the insert that follows it can never interleave with another request's;
- reads go to the thread pool; the store's own lock keeps them consistent with writes;
- compiling the embedder (``torch.compile``, minutes on a busy 2-core machine) runs on a
  background thread while the eager embedder serves; the batcher switches to
  the compiled one in a single reference assignment once every graph is built.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, ParamSpec, TypeVar

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from indexer.change_log import ChangeFollower
from indexer.defaults import resolve_model
from indexer.detect import make_detector
from indexer.embedder import COMPILED_BATCHES, Embedder, load_embedder
from indexer.errors import ImageTooLarge
from indexer.faceflow import FlowSpec, flow_spec, resolve_detector, vector_space
from indexer.pipeline import FaceMode, FacePipeline, ImageFaces
from indexer.store import GalleryStore
from service.batcher import MicroBatcher
from service.metrics import Metrics
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

EmbedderState = Literal["eager", "compiling", "compiled"]
"""Which embedder serves: eager (not compiling, or compiling failed), eager while the compiled
one is being built (compiling), or the compiled one."""

SECONDS_PER_GRAPH_ON_2_CORES = 20.0
"""torch.compile of the ResNet50 embedder, one graph per batch size: all six took 119 s on 2
cores in issue 14's first run, 225 s with a training run sharing the cores. Only for the log's
estimate; nothing waits on it."""


class ThreadLocalPipeline:
    """One FacePipeline per thread: OpenCV detectors keep per-call state (YuNet's input size)."""

    def __init__(self, settings: ServiceSettings, spec: FlowSpec) -> None:
        self._settings = settings
        self.spec = spec
        self._local = threading.local()
        self.get()

    def get(self) -> FacePipeline:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self.spec.pipeline()
            self._local.pipeline = pipeline
        return pipeline

    def from_bytes(self, data: bytes, name: str, mode: FaceMode, fallback: bool) -> ImageFaces:
        try:
            return self.get().from_bytes(data, name=name, mode=mode, fallback=fallback)
        except ImageTooLarge as exc:
            raise self._own_pixel_limit(exc, name) from exc

    def _own_pixel_limit(self, exc: ImageTooLarge, name: str) -> ImageTooLarge:
        """Pillow's decompression-bomb guard can fire before facefind's own check, and its
        text quotes Pillow's limit (80 M or 160 M pixels): say it with facefind's limit."""
        cause = exc.__cause__
        if not isinstance(cause, Image.DecompressionBombError | Image.DecompressionBombWarning):
            return exc
        limit = self._settings.max_pixels
        found = re.search(r"\((\d+) pixels\)", str(cause))
        pixels = f"{int(found.group(1)):,} pixels" if found else "more pixels than allowed"
        return ImageTooLarge(f"{name}: {pixels} is more than the limit of {limit:,}")


PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


class ServingEmbedder:
    """The embedder that serves now: the eager one, then the compiled one once it is built.

    Compiling (``torch.compile``, minutes on a busy 2-core machine, issue 14) runs on a
    background thread; blocking the start on it left the port closed all that
    time. The switch is one reference assignment, read once per batch, so a batch runs wholly
    on one embedder or the other.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.current = embedder
        self.state: EmbedderState = "eager"
        self._cancelled = False

    def embed(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.current.embed(crops, batch_size)

    def compile_in_background(self) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        about = SECONDS_PER_GRAPH_ON_2_CORES * len(COMPILED_BATCHES) * 2 / min(max(cores, 1), 8)
        log.info("compiling the embedder, about %.0f s; serving meanwhile (eager)", about)
        self.state = "compiling"
        threading.Thread(target=self._compile, name="facefind-compile", daemon=True).start()

    def cancel(self) -> None:
        """At shutdown: a compile that finishes later is dropped (it cannot be interrupted)."""
        self._cancelled = True

    def _compile(self) -> None:
        # Not niced: a low-priority thread that holds the GIL while the OS leaves it waiting
        # stalls the event loop (priority inversion). Seen on a busy 2-core machine with this
        # thread at nice +10: /ready took over 5 s to answer.
        start = time.perf_counter()
        eager = self.current
        try:  # a copy of the network: the eager one keeps serving, untouched, meanwhile
            compiled = Embedder(
                copy.deepcopy(eager.model),
                eager.info,
                device=str(eager.device),
                precision=PRECISION_NAMES.get(eager.precision, "auto"),
                compile=True,
            )
        except Exception:
            log.exception("compiling the embedder failed; the eager one goes on serving")
            compiled = None
        if self._cancelled:
            return
        if compiled is None or not compiled.compiled:
            self.state = "eager"
            log.info("embedder: eager (compiling did not succeed, see above)")
            return
        self.current = compiled
        self.state = "compiled"
        log.info("embedder: compiled in %.0f s, serving compiled", time.perf_counter() - start)


@dataclass
class Engine:
    settings: ServiceSettings
    serving: ServingEmbedder
    pipeline: ThreadLocalPipeline
    store: GalleryStore
    batcher: MicroBatcher
    metrics: Metrics
    writer: ThreadPoolExecutor
    follower: ChangeFollower
    ready: bool = True
    unsaved: int = field(default=0)
    """Faces added since the index file was last saved (touched on the writer thread only)."""

    @property
    def embedder(self) -> Embedder:
        """The embedder serving now (model info and fingerprint are the same on both)."""
        return self.serving.current

    @property
    def embedder_state(self) -> EmbedderState:
        return self.serving.state

    @classmethod
    def open(cls, settings: ServiceSettings, metrics: Metrics) -> Engine:
        """Load the model (eager), the detector and the store; raises FacefindError.

        One log line per stage. Compiling is left to ``start_compiling``, so that the port
        opens in seconds.
        """
        model = resolve_model(settings.model)
        make_detector(*resolve_detector(settings.detector, settings.detector_model))  # fail early
        embedder = load_embedder(model, device=settings.device, precision=settings.precision)
        log.info(
            "model: %s (%s, %s, %d px in, %d-d out) from %s",
            embedder.info.name, embedder.fingerprint, embedder.info.arch,
            embedder.input_size, embedder.embedding_dim, model,
        )  # fmt: skip
        log.info("device: %s, %s", embedder.device, embedder.precision)
        spec = flow_spec(embedder.info, settings)
        log.info("detector: %s (%s), %s crops", spec.detector, spec.detector_model or "built in",
                 spec.crops)  # fmt: skip
        space = vector_space(embedder.info, spec)
        store = GalleryStore(
            settings.data_dir,
            model=space,
            embedding_dim=embedder.embedding_dim,
            index_factory=settings.index_factory,
            store_url=settings.store_url,
        )
        try:
            pipeline = ThreadLocalPipeline(settings, spec)
        except BaseException:
            store.close()
            raise
        log.info("gallery: %s, %d faces", store.location, store.count())
        log.info("index: %s, on the %s", store.index_type, "GPU" if store.on_gpu else "CPU")
        serving = ServingEmbedder(embedder)
        batcher = MicroBatcher(
            serving.embed,
            embedder.embedding_dim,
            max_batch=settings.max_batch,
            wait_s=settings.batch_wait_ms / 1000.0,
            on_batch=metrics.observe_batch,
        )
        metrics.track_gallery(store.count)
        writer = ThreadPoolExecutor(1, thread_name_prefix="facefind-writer")
        follower = ChangeFollower(store).start()  # what other processes write, searchable here
        return cls(settings, serving, pipeline, store, batcher, metrics, writer, follower)

    def start_compiling(self) -> None:
        """Compile the embedder in the background where that is asked for and possible."""
        if not self.settings.compile:
            log.info("embedder: eager (FACEFIND_COMPILE=false)")
        elif self.embedder.device.type != "cpu":
            log.info("embedder: eager (torch.compile is used on the CPU only)")
        else:
            self.serving.compile_in_background()

    async def offload(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking work (decode, detect, search, SQLite reads) off the event loop."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a gallery write on the single writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.writer, lambda: fn(*args, **kwargs))

    def added(self, count: int) -> None:
        """Called on the writer thread after faces were added."""
        self.unsaved += count

    def save_index(self) -> None:
        """Called on the writer thread."""
        self.store.save_index()
        self.unsaved = 0

    async def save_index_periodically(self) -> None:
        """Keep the index file close to SQLite so that a restart after a crash is quick.

        Nothing depends on it for durability: SQLite has every acknowledged face already.
        """
        waited = 0.0
        while True:
            await asyncio.sleep(1.0)
            waited += 1.0
            due = waited >= self.settings.index_save_seconds
            if self.unsaved >= self.settings.index_save_after or (self.unsaved and due):
                await self.write(self.save_index)
            if due:
                waited = 0.0

    def close(self) -> None:
        """Stop taking work, finish what is queued, save the index, close the database."""
        self.ready = False
        self.serving.cancel()
        self.batcher.close()
        self.writer.shutdown(wait=True)
        self.follower.stop()
        self.store.close()
        log.info("gallery index saved and database closed")
