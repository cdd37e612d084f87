"""Where evaluations run: in this process, a local process pool (``workers > 1``) or a Dask
distributed cluster (``scheduler`` = an address like ``tcp://host:8786`` or a ``Client``).

``Executor.map(fn, items, on_result)`` calls ``fn(*item)`` for every item, hands each result to
``on_result(index, result)`` the moment it arrives (so the caller commits it at once) and returns
the results in input order. On Dask a task whose worker dies is re-run on another worker by the
scheduler; ``fn`` must be a module-level function so that it pickles."""
from __future__ import annotations

import os

CONNECT_TIMEOUT_S = 15          # connecting to a Dask scheduler, the handshake included (at most 20 s)


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
                addr = probe_scheduler(self.scheduler)
                try:
                    self._client = Client(addr, timeout=f"{CONNECT_TIMEOUT_S}s")
                except (OSError, TimeoutError) as e:
                    from accelerators.errors import SpecError
                    raise SpecError("--scheduler", f"cannot connect within {CONNECT_TIMEOUT_S} s "
                                    f"({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''})",
                                    addr) from None
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


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """Connect to ``address``, complete Dask's handshake and ask the peer who it is, all within
    ``timeout`` seconds; returns the address or raises a SpecError naming it: nothing listening,
    a peer that is not a Dask scheduler (a web server, a worker, anything that never answers)."""
    import asyncio
    import socket
    from urllib.parse import urlsplit
    from accelerators.errors import SpecError

    if str(address).startswith("tcp://"):      # nothing listening: say so at once, not after the timeout
        u = urlsplit(str(address))
        try:
            socket.create_connection((u.hostname, u.port), timeout=min(5.0, timeout)).close()
        except ConnectionRefusedError:
            raise SpecError("--scheduler", "connection refused (no scheduler listening there)", address) from None
        except socket.timeout:
            raise SpecError("--scheduler", f"no answer within {min(5.0, timeout):g} s (host unreachable?)",
                            address) from None
        except OSError as e:
            raise SpecError("--scheduler", f"cannot connect ({e.strerror or e})", address) from None

    async def ask():
        from distributed.comm import connect
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    try:
        who = asyncio.run(asyncio.wait_for(ask(), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise SpecError("--scheduler", f"no Dask scheduler answered within {timeout:g} s (nothing listening "
                        "there, or something else on that port?)", address) from None
    except ImportError:
        raise SpecError("--scheduler", "needs dask[distributed] (pip install 'codesign-sim[cluster]')", address) from None
    except (OSError, ValueError) as e:
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise SpecError("--scheduler", f"cannot connect ({msg})", address) from None
    except Exception as e:                 # noqa: BLE001 -- a peer speaking another protocol
        raise SpecError("--scheduler", f"not a Dask scheduler ({type(e).__name__})", address) from None
    if not isinstance(who, dict) or who.get("type") != "Scheduler":
        kind = who.get("type") if isinstance(who, dict) else type(who).__name__
        raise SpecError("--scheduler", f"the peer is not a Dask scheduler (it says {kind!r})", address)
    return address


def worker_name() -> str:
    try:
        from dask.distributed import get_worker
        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"
