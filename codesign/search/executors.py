"""Where evaluations run: in this process, a local process pool (``workers > 1``) or a Dask
distributed cluster (``scheduler`` = an address like ``tcp://host:8786`` or a ``Client``).

``Executor.map(fn, items, on_result)`` calls ``fn(*item)`` for every item, hands each result to
``on_result(index, result)`` the moment it arrives (so the caller commits it at once) and returns
the results in input order. On Dask a task whose worker dies is re-run on another worker by the
scheduler; ``fn`` must be a module-level function so that it pickles."""
from __future__ import annotations

import os


class Executor:
    def __init__(self, workers: int = 1, scheduler=None):
        self.workers, self.scheduler = max(1, int(workers or 1)), scheduler
        self._pool = self._client = None
        self._own_client = False

    @property
    def kind(self) -> str:
        return "dask" if self.scheduler is not None else "processes" if self.workers > 1 else "serial"

    def _dask(self):
        if self._client is None:
            from dask.distributed import Client
            if isinstance(self.scheduler, Client):
                self._client = self.scheduler
            else:
                self._client = Client(self.scheduler, timeout="30s")
                self._own_client = True
        return self._client

    def map(self, fn, items, on_result=None) -> list:
        items = [tuple(it) for it in items]
        out = [None] * len(items)

        def done(i, r):
            out[i] = r
            if on_result is not None:
                on_result(i, r)

        if not items:
            return out
        if self.kind == "serial" or len(items) == 1 and self.kind == "processes":
            for i, it in enumerate(items):
                done(i, fn(*it))
        elif self.kind == "processes":
            from concurrent.futures import ProcessPoolExecutor, as_completed
            if self._pool is None:
                import multiprocessing as mp
                self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
            futs = {self._pool.submit(fn, *it): i for i, it in enumerate(items)}
            for f in as_completed(futs):
                done(futs[f], f.result())
        else:
            from dask.distributed import as_completed
            client = self._dask()
            futs = client.map(fn, *zip(*items), pure=False)
            index = {f.key: i for i, f in enumerate(futs)}
            for f in as_completed(futs):
                done(index[f.key], f.result())
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def worker_name() -> str:
    try:
        from dask.distributed import get_worker
        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"
