"""The build's embedding stage on Ray Data: `alliance-qa build --ray [ADDRESS]`.

Only the embedding stage runs on the cluster; reading, chunking, coding, calibration and
writing stay in the building process, and serving never needs Ray. The model's verified ONNX
export (onnx_encoder.py) is put in Ray's object store once; each worker (an actor holding
one CPU) loads it with one thread and embeds batches of texts. Ray Data streams the results
back in order, a slice at a time, into the same stages as the plain build, so the
index is the plain build's to float tolerance and the building process holds one slice.

Local Ray by default (its workers use this machine's cores); with an ADDRESS, a running
cluster whose nodes have `alliance-qa[cluster]` installed (`ray start --head` on one node,
`ray start --address HEAD:6379` on the others).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .embedding import TokenVectors
from .errors import ClusterUnavailable
from .onnx_encoder import ENCODING_FILES, OnnxEncoder

TEXTS_PER_TASK = 256      # a worker sorts these by length into its own batches


class RayReader:
    """Embeds a build's texts on Ray workers (`stream`); the local export names pieces."""

    def __init__(self, local: OnnxEncoder, folder: Path, address: str | None = None,
                 workers: int | None = None):
        try:
            import ray
        except ImportError as error:
            raise ClusterUnavailable("build --ray needs Ray, which is not installed.") from error
        if address:
            _reachable(address)
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")   # no C++ notices
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=False,
                     ignore_reinit_error=True)
        except Exception as error:     # unreachable address, a cluster of another version…
            raise ClusterUnavailable(f"Ray could not start or connect to "
                                     f"{address or 'a local cluster'} "
                                     f"({type(error).__name__}: {error}).") from error
        self.local, self.dimension = local, local.dimension
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.parts = ray.put({name: (folder / name).read_bytes()
                              for name in (local.model_file, *ENCODING_FILES)})

    def words(self, ids: np.ndarray) -> list[str]:
        """The word pieces of these vocabulary ids."""
        return self.local.words(ids)

    def stream(self, texts: list[str], size: int, pieces: bool
               ) -> Iterator[tuple[np.ndarray, list[TokenVectors] | None]]:
        """The texts' vectors (and word pieces, if `pieces`), `size` texts at a time, in
        order, embedded by the workers."""
        import ray
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.ERROR)   # no plans and timings
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        dataset = ray.data.from_items([{"text": t} for t in texts]).map_batches(
            _Worker, fn_constructor_kwargs={"parts": [self.parts], "pieces": pieces,
                                            "model": self.local.model_file},
            batch_size=TEXTS_PER_TASK, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=self.workers))
        try:
            for batch in dataset.iter_batches(batch_size=size, batch_format="numpy"):
                yield batch["vector"].astype(np.float32), [
                    TokenVectors(np.asarray(i, np.int32), np.asarray(v, np.float32))
                    for i, v in zip(batch["ids"], batch["pieces"])] if pieces else None
        except Exception as error:      # a worker died, the cluster went away…
            raise ClusterUnavailable(f"The Ray workers failed ({type(error).__name__}: "
                                     f"{str(error)[:300]}).") from error

    def close(self) -> None:
        """Disconnect (a local cluster stops with it)."""
        import ray
        ray.shutdown()


def _reachable(address: str, seconds: float = 5.0) -> None:
    """Fail at once for an address nothing listens at (Ray itself waits minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except (OSError, ValueError) as error:
        raise ClusterUnavailable(f"No Ray cluster answers at {address!r} ({error}); an "
                                 "address is HOST:PORT, as `ray start --head` prints it."
                                 ) from error


class _Worker:
    """One Ray actor: the export, loaded from the object store, on one thread."""

    def __init__(self, parts: list, pieces: bool, model: str):
        import ray
        folder = Path(tempfile.mkdtemp(prefix="alliance-qa-worker-"))
        try:
            for name, data in ray.get(parts[0]).items():
                (folder / name).write_bytes(data)
            self.encoder = OnnxEncoder(folder, threads=1, files=ENCODING_FILES,  # verified
                                       model=model)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.pieces = pieces

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, pieces = self.encoder.encode_with_pieces([str(t) for t in batch["text"]])
        out = {"vector": vectors}
        if self.pieces:
            out["ids"], out["pieces"] = _ragged([p.ids for p in pieces]), \
                _ragged([p.vectors for p in pieces])
        return out


def _ragged(arrays: list[np.ndarray]) -> np.ndarray:
    """A column of arrays of different lengths (numpy would stack equal ones)."""
    column = np.empty(len(arrays), dtype=object)
    for row, array in enumerate(arrays):
        column[row] = array
    return column
