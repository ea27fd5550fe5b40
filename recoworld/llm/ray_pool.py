"""LLM serving on Ray: a pool of vLLM engines as Ray actors behind the ``LLMBackend`` interface.

``RayVLLMBackend`` (``LLMConfig(backend="ray_vllm")``, settings in ``LLMConfig.ray``) starts
``ray.actors`` ``EngineActor``s, each holding one in-process ``VLLMBackend`` (one engine per GPU
with ``num_gpus=1`` on GPU nodes, CPU engines otherwise), placed with Ray's SPREAD strategy
so that the engines land on different nodes. Validation, repair, the response cache and the
statistics stay in the driver-side ``LLMBackend.generate``; only the transport differs:

- ``_complete`` / ``_continuation_logprobs`` cut the requests of a step into contiguous chunks,
  one per live actor (so requests sharing a prefix stay on one engine's prefix cache), send
  them all at once and gather the answers in request order;
- when an actor dies (node lost, process killed, ``ray.kill``), its chunk is re-sent to the
  next live actor, at most ``ray.max_retries`` times; the dead actor leaves the rotation, and
  with ``ray.replace_dead`` a replacement is started and joins once its engine is up. An error
  raised *inside* an engine (bad request) is not retried: it comes back as ``BackendError``
  naming the chunk's first request, like the in-process backend's;
- ``ray.pool_name`` names the actors, so other processes (population shards) constructing the
  same config attach to the live engines instead of starting their own; ``close()`` ends the
  engines only in the process that started them.

CPU engines read their environment in the actor before the engine starts:
``VLLM_CPU_OMP_THREADS_BIND`` from ``ray.cpu_binds`` (per actor) or ``vllm.cpu_threads``,
``VLLM_CPU_KVCACHE_SPACE`` from ``ray.kvcache_gib``. The engines are seeded with
``LLMConfig.seed`` like the in-process one; answers depend on how a step's requests are
batched, so a pool of N engines is not bit-identical to one engine. ``model_id`` is the in-process
backend's (``vllm:<model>``): the same model answers, so the response cache is shared.
"""

from __future__ import annotations

import itertools
import os
import warnings
from typing import Any

import numpy as np

from recoworld.llm.base import LLMBackend
from recoworld.llm.cache import ResponseCache
from recoworld.llm.config import LLMConfig
from recoworld.llm.types import BackendError, ChatRequest, RawCompletion


class EngineActor:
    """One vLLM engine in a Ray actor (the in-process backend's transport, remotely)."""

    def __init__(self, config: dict[str, Any], env: dict[str, str]) -> None:
        os.environ.update(env)
        from recoworld.llm.vllm_backend import VLLMBackend

        cfg = LLMConfig.model_validate({**config, "backend": "vllm", "cache": False})
        self.backend = VLLMBackend(cfg, None)

    def info(self) -> dict[str, Any]:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def complete(
        self, requests: list[ChatRequest], schema: dict[str, Any] | None
    ) -> list[RawCompletion]:
        return self.backend._complete(requests, schema)

    def continuation_logprobs(
        self, prefixes: list[str], continuations: list[str]
    ) -> list[np.ndarray]:
        return self.backend._continuation_logprobs(prefixes, continuations)

    def close(self) -> None:
        self.backend.close()


class RayVLLMBackend(LLMBackend):
    """A pool of vLLM engine actors (see the module docstring)."""

    name = "ray_vllm"

    def __init__(self, config: LLMConfig, cache: ResponseCache | None = None) -> None:
        super().__init__(config, cache)
        import ray

        if not ray.is_initialized():
            ray.init(address=config.ray.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)  # fmt: skip
        self.stats.update({"actor_failures": 0, "resent_chunks": 0})
        self._payload = config.model_dump(mode="json")
        self._serial = 0
        self.owns_named = False  # started (some of) the named pool's actors
        self.actors: list[Any] = []
        self._starting: list[tuple[Any, Any]] = []  # (actor, ready ref) not in rotation yet
        started = [self._start_actor(i) for i in range(config.ray.actors)]
        refs = [ref for _, ref in started]
        try:
            ray.get(refs, timeout=config.ray.start_timeout_s)
        except ray.exceptions.RayError as err:
            for actor, _ in started:
                ray.kill(actor)
            raise BackendError(
                "<pool start>",
                f"{config.ray.actors} vLLM engine actor(s) did not start within "
                f"{config.ray.start_timeout_s:.0f} s: {err}",
            ) from err
        self.actors = [actor for actor, _ in started]
        self._next = 0

    # ------------------------------------------------------------------ the pool
    def _start_actor(self, index: int) -> tuple[Any, Any]:
        import ray

        rc = self.config.ray
        env = {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "OMP_NUM_THREADS": "1"}
        if rc.cpu_binds:
            env["VLLM_CPU_OMP_THREADS_BIND"] = rc.cpu_binds[index % len(rc.cpu_binds)]
        if rc.kvcache_gib is not None:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(rc.kvcache_gib)
        options: dict[str, Any] = {
            "num_cpus": rc.num_cpus,
            "num_gpus": rc.num_gpus,
            "scheduling_strategy": rc.strategy,
            "max_restarts": 0,
        }
        if rc.pool_name:
            name = f"{rc.pool_name}-{index}"
            try:  # a live engine of this pool (started by another process): attach to it
                actor = ray.get_actor(name)
                return actor, actor.info.remote()
            except ValueError:
                options["name"] = name
            self.owns_named = True
        actor = ray.remote(EngineActor).options(**options).remote(self._payload, env)
        return actor, actor.info.remote()

    def actor_info(self) -> list[dict[str, Any]]:
        """Node id and pid of every engine in rotation."""
        import ray

        return ray.get([a.info.remote() for a in self.actors])

    def _admit_ready(self) -> None:
        """Move replacement actors whose engine is up into the rotation."""
        import ray

        still = []
        for actor, ref in self._starting:
            done, _ = ray.wait([ref], timeout=0)
            if not done:
                still.append((actor, ref))
                continue
            try:
                ray.get(ref)
                self.actors.append(actor)
            except ray.exceptions.RayError as err:  # the replacement failed to start: drop it
                self.stats["actor_failures"] += 1
                warnings.warn(f"a replacement vLLM engine failed to start: {err}", stacklevel=2)
        self._starting = still

    def _retire(self, actor: Any) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
            self.stats["actor_failures"] += 1
            if self.config.ray.replace_dead:
                self._serial += 1
                self._starting.append(self._start_actor(self.config.ray.actors + self._serial))

    def _scatter(
        self, method: str, sliced: list[list[Any]], extra: tuple[Any, ...], first_id: list[str]
    ) -> list[Any]:
        """Call ``method(*chunks of sliced, *extra)``, one chunk of the items per live actor;
        re-send a dead actor's chunk to another; gather the answers in item order."""
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError

        self._admit_ready()
        if not self.actors:
            raise BackendError(first_id[0], "no live vLLM engine actor in the pool")
        n = len(sliced[0])
        bounds = np.linspace(0, n, min(len(self.actors), n) + 1).astype(int)
        chunks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        out: list[Any] = [None] * len(chunks)
        tries = [0] * len(chunks)
        pending: dict[Any, tuple[int, Any]] = {}

        def send(c: int, actor: Any) -> None:
            lo, hi = chunks[c]
            ref = getattr(actor, method).remote(*[a[lo:hi] for a in sliced], *extra)
            pending[ref] = (c, actor)

        for c in range(len(chunks)):
            send(c, self.actors[(self._next + c) % len(self.actors)])
        self._next += 1
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            c, actor = pending.pop(ref)
            try:
                out[c] = ray.get(ref)
            except (RayActorError, ActorUnavailableError) as err:
                self._retire(actor)
                tries[c] += 1
                if tries[c] > self.config.ray.max_retries or not self.actors:
                    raise BackendError(
                        first_id[chunks[c][0]],
                        f"engine actor died and the chunk failed {tries[c]} time(s): {err}",
                    ) from err
                self.stats["resent_chunks"] += 1
                send(c, self.actors[(c + tries[c]) % len(self.actors)])
            except ray.exceptions.RayTaskError as err:
                raise BackendError(first_id[chunks[c][0]], f"engine error: {err}") from err
        return [x for part in out for x in part]

    # ------------------------------------------------------------------ transport
    @property
    def model_id(self) -> str:
        return f"vllm:{self.config.model}"

    def _complete(
        self, requests: list[ChatRequest], schema: dict[str, Any] | None
    ) -> list[RawCompletion]:
        ids = [r.request_id for r in requests]
        return self._scatter("complete", [requests], (schema,), ids)

    def _continuation_logprobs(
        self, prefixes: list[str], continuations: list[str]
    ) -> list[np.ndarray]:
        ids = [p[:60] for p in prefixes]
        return self._scatter("continuation_logprobs", [prefixes, continuations], (), ids)

    def close(self) -> None:
        import ray

        actors = self.actors + [a for a, _ in self._starting]
        self.actors, self._starting = [], []
        if not self.config.ray.pool_name or self.owns_named:  # attached users leave it running
            for actor in actors:
                try:
                    ray.get(actor.close.remote(), timeout=60)
                except ray.exceptions.RayError as err:  # already dead, or stuck: killed below
                    warnings.warn(f"engine close failed ({err}); killing the actor", stacklevel=2)
                ray.kill(actor)
        super().close()
