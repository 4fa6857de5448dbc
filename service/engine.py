"""Everything the service loads once at start-up, and the threads that use it.

- decoding and detection run in the default thread pool (several at once);
- embedding runs on the micro-batcher's one thread (see ``service.batcher``);
- writes to the gallery run on one writer thread, so they are serialised and a duplicate
  check and the insert that follows it can never interleave with another request's;
- reads go to the thread pool; the store's own lock keeps them consistent with writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from indexer.defaults import resolve_model
from indexer.detect import make_detector
from indexer.embedder import Embedder, load_embedder
from indexer.pipeline import FaceMode, FacePipeline, ImageFaces
from indexer.store import GalleryStore
from service.batcher import MicroBatcher
from service.metrics import Metrics
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class ThreadLocalPipeline:
    """One FacePipeline per thread: OpenCV detectors keep per-call state (YuNet's input size)."""

    def __init__(self, settings: ServiceSettings, input_size: int) -> None:
        self._settings = settings
        self._input_size = input_size
        self._local = threading.local()
        self.get()

    def get(self) -> FacePipeline:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            detector = make_detector(self._settings.detector, self._settings.detector_model)
            pipeline = FacePipeline(
                detector, self._input_size, max_pixels=self._settings.max_pixels
            )
            self._local.pipeline = pipeline
        return pipeline

    def from_bytes(self, data: bytes, name: str, mode: FaceMode, fallback: bool) -> ImageFaces:
        return self.get().from_bytes(data, name=name, mode=mode, fallback=fallback)


@dataclass
class Engine:
    settings: ServiceSettings
    embedder: Embedder
    pipeline: ThreadLocalPipeline
    store: GalleryStore
    batcher: MicroBatcher
    metrics: Metrics
    writer: ThreadPoolExecutor
    ready: bool = True
    unsaved: int = field(default=0)
    """Faces added since the index file was last saved (touched on the writer thread only)."""

    @classmethod
    def open(cls, settings: ServiceSettings, metrics: Metrics) -> Engine:
        """Load the model, the detector and the store; raises FacefindError/ValueError."""
        model = resolve_model(settings.model)
        make_detector(settings.detector, settings.detector_model)  # fail before the slow part
        embedder = load_embedder(
            model, device=settings.device, precision=settings.precision, compile=settings.compile
        )
        store = GalleryStore(
            settings.data_dir,
            model=embedder.fingerprint,
            embedding_dim=embedder.embedding_dim,
            index_factory=settings.index_factory,
        )
        try:
            pipeline = ThreadLocalPipeline(settings, embedder.input_size)
        except BaseException:
            store.close()
            raise
        batcher = MicroBatcher(
            embedder.embed,
            embedder.embedding_dim,
            max_batch=settings.max_batch,
            wait_s=settings.batch_wait_ms / 1000.0,
            on_batch=metrics.observe_batch,
        )
        metrics.track_gallery(store.count)
        log.info(
            "model %s (%s, %d-d, %s %s%s), detector %s, gallery %s: %d faces, index %s",
            embedder.info.name,
            embedder.fingerprint,
            embedder.embedding_dim,
            embedder.device,
            embedder.precision,
            ", compiled" if embedder.compiled else "",
            settings.detector,
            settings.data_dir,
            store.count(),
            store.index_type,
        )
        writer = ThreadPoolExecutor(1, thread_name_prefix="facefind-writer")
        return cls(settings, embedder, pipeline, store, batcher, metrics, writer)

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
        self.batcher.close()
        self.writer.shutdown(wait=True)
        self.store.close()
        log.info("gallery index saved and database closed")
