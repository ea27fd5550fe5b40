"""The openai backend against a real local HTTP server that misbehaves on purpose:
HTTP 500s, malformed bodies, truncated JSON content, hangs and client errors."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel

from recoworld.llm import BackendError, ChatRequest, StructuredOutputError, make_backend
from recoworld.llm.config import LLMConfig

from .fault_server import GOOD, Server


class Review(BaseModel):
    click: bool
    reason: str


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def _backend(server: Server, **kw):
    settings = {"backoff_s": 0.01, "timeout_s": 1.0, "concurrency": 1, **kw}
    cfg = LLMConfig(backend="openai", model="test-model", base_url=server.url, cache=False,
                    **settings)  # fmt: skip
    return make_backend(cfg)


def _req(rid="user-1/step-0"):
    return ChatRequest.of("sys", "Review this.", request_id=rid)


def test_retries_server_errors_and_malformed_bodies_then_succeeds(server):
    server.actions = [("status", 500), ("raw", "<html>oops"), ("status", 503), ("ok", GOOD)]
    backend = _backend(server, max_retries=3)
    out = backend.generate([_req()], Review)
    assert out[0].parsed.click and out[0].prompt_tokens == 12
    assert backend.retries == 3
    body = server.bodies[-1]
    assert body["model"] == "test-model" and body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["title"] == "Review"


def test_truncated_and_malformed_json_content_is_repaired(server):
    server.actions = [("ok", '{"click": true, "rea'), ("ok", "Sure! here you go"), ("ok", GOOD)]
    backend = _backend(server, max_repairs=2)
    out = backend.generate([_req()], Review)
    assert out[0].ok and out[0].attempts == 3 and len(out[0].history) == 2
    # the repair turn shows the model its own broken output
    assert server.bodies[1]["messages"][-2]["content"] == '{"click": true, "rea'


def test_persistent_garbage_raises_a_typed_error(server):
    server.actions = [("ok", "nope")] * 3
    backend = _backend(server, max_repairs=2)
    with pytest.raises(StructuredOutputError, match="user-1/step-0"):
        backend.generate([_req()], Review)


def test_hangs_time_out_and_end_in_a_backend_error(server):
    server.actions = [("hang", 3.0), ("hang", 3.0)]
    backend = _backend(server, max_retries=1, timeout_s=0.3)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"user-9.*2 attempts.*Timeout"):
        backend.generate([_req("user-9")], Review)
    assert time.perf_counter() - start < 2.5


def test_client_errors_are_not_retried(server):
    server.actions = [("status", 400), ("ok", GOOD)]
    backend = _backend(server, max_retries=3)
    with pytest.raises(BackendError, match="HTTP 400"):
        backend.generate([_req()], Review)
    assert len(server.bodies) == 1


def test_concurrent_batch_keeps_request_order(server):
    server.actions = [("ok", json.dumps({"click": i % 2 == 0, "reason": f"r{i}"}))
                      for i in range(8)]  # fmt: skip
    cfg_backend = _backend(server)
    cfg_backend.config.concurrency = 4
    out = cfg_backend.generate([_req(f"u{i}") for i in range(8)], Review)
    assert [c.request_id for c in out] == [f"u{i}" for i in range(8)]
    assert len(server.bodies) == 8 and all(c.ok for c in out)


def test_api_key_comes_from_the_environment(server, monkeypatch):
    seen = {}

    orig = server.httpd.RequestHandlerClass.do_POST

    def spy(self):
        seen["auth"] = self.headers.get("Authorization")
        return orig(self)

    monkeypatch.setattr(server.httpd.RequestHandlerClass, "do_POST", spy)
    monkeypatch.setenv("MY_KEY", "sekrit")
    server.actions = [("ok", GOOD)]
    _backend(server, api_key_env="MY_KEY").generate([_req()], Review)
    assert seen["auth"] == "Bearer sekrit"
