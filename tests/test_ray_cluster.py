"""A real two-node Ray cluster on this machine: a sharded population and an LLM engine pool
across it.

The test starts a head (``ray start --head --block``) and a worker node (``ray start --address
... --block``) as separate process trees on loopback, each with one CPU and its own temp dir,
then runs this file as the driver in a subprocess (``python tests/test_ray_cluster.py --driver
ADDRESS``), so that the Ray instance another test may have started in the pytest process is
never touched. The driver checks:

- a 2-shard population (one shard per node, checked by the actors' node ids) gives exactly the
  in-process single-shard run of the same seed;
- a ``ray_vllm`` pool of two engines (embedded SmolLM2, one per node, one core each) answers a
  batch in request order; after ``ray.kill`` of one engine, the next batch still completes on
  the other (its chunk re-sent), and the pool reports the failure;
- RLlib PPO with ``num_env_runners=2`` (``experiments/configs/cluster_ppo_local.yaml``) puts
  one env runner on each node and completes an iteration.

Teardown never uses ``ray stop`` (it stops every Ray process of the machine, other users'
included): it kills the process groups it started and any process whose command line names
its own temp dir. Slow (two CPU engines start): ``pytest -m slow tests/test_ray_cluster.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))

WORLD = {
    "catalog": {"synthetic": {"n_items": 300, "n_creators": 30, "seed": 3}},
    "candidates": {"n_candidates": 10},
    "episode": {"slate_size": 3, "text_info": "none"},
}
POPULATION = {
    "world": WORLD,
    "n_users": 40,
    "capacity": 48,
    "arrival_rate": 0.5,
    "social": {"share_probability": 0.5},
    "publishing": {"reserve": 40, "rate": 1.0, "every": 2, "follower_slots": 1},
}


# --------------------------------------------------------------------------- the cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(temp_dir: Path, head_port: int, head: bool) -> list[str]:
    """``ray start`` for one node: 1 CPU, loopback, fresh ports, no dashboard, blocking."""
    cmd = [RAY, "start", "--block", "--num-cpus", "1", "--num-gpus", "0",
           "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir),
           "--object-store-memory", str(150 * 1024**2), "--disable-usage-stats",
           "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
           "--dashboard-agent-listen-port", str(free_port()),
           "--dashboard-agent-grpc-port", str(free_port()),
           "--runtime-env-agent-port", str(free_port()),
           "--metrics-export-port", str(free_port())]  # fmt: skip
    if head:
        cmd += ["--head", "--port", str(head_port), "--include-dashboard", "false",
                "--dashboard-port", str(free_port()),
                "--ray-client-server-port", str(free_port())]  # fmt: skip
    else:
        cmd += ["--address", f"127.0.0.1:{head_port}"]
    return cmd


class LocalCluster:
    """Head + worker node as separate ``ray start --block`` process trees (own sessions)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.logs_open: list[Any] = []
        # token auth off: a loopback test cluster; without this, a token in ~/.ray switches
        # the head to token mode while clients may not pick the token up
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
        self.env.pop("RAY_ADDRESS", None)

    def _spawn(self, name: str, head: bool) -> None:
        temp = self.root / name
        temp.mkdir(parents=True, exist_ok=True)
        log = open(self.root / f"{name}.log", "w")  # closed in stop()
        self.logs_open.append(log)
        proc = subprocess.Popen(node_command(temp, self.port, head), stdout=log,
                                stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)  # fmt: skip
        self.procs.append(proc)

    def start(self, timeout: float = 120.0) -> None:
        self._spawn("head", head=True)
        self._wait_nodes(1, timeout)
        self._spawn("worker", head=False)
        self._wait_nodes(2, timeout)

    def _wait_nodes(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, "
            "configure_logging=False); print(sum(x['Alive'] for x in ray.nodes()))"
        )
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"ray start exited with {proc.returncode}: {self.logs()}")
            out = subprocess.run([sys.executable, "-c", probe, self.address], env=self.env,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            time.sleep(1.0)
        raise TimeoutError(f"the cluster did not reach {n} node(s): {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.root.glob("*.log")))

    def stop(self) -> list[int]:
        """Kill everything this cluster started; returns the pids still alive (should be [])."""
        import psutil

        mine: set[int] = set()
        for proc in self.procs:
            try:
                mine |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
            except psutil.NoSuchProcess:
                pass
            mine.add(proc.pid)
        mine |= self._named_here()
        for proc in self.procs:  # graceful first: the ray start process ends its children
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._alive(mine | self._named_here()):
            time.sleep(0.5)
        for pid in self._alive(mine | self._named_here()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for log in self.logs_open:
            log.close()
        time.sleep(0.5)
        return self._alive(mine | self._named_here())

    def _named_here(self) -> set[int]:
        """Processes whose command line names this cluster's temp dir."""
        import psutil

        found = set()
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(str(self.root) in part for part in (p.info["cmdline"] or [])):
                    found.add(p.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    @staticmethod
    def _alive(pids: set[int]) -> list[int]:
        import psutil

        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        return sorted(alive)


# --------------------------------------------------------------------------- the test


@pytest.mark.slow
def test_two_node_cluster_runs_sharded_population_and_llm_pool():
    root = Path(tempfile.mkdtemp(prefix="rwc", dir="/tmp"))  # short: Ray's socket paths
    cluster = LocalCluster(root)
    result = None
    try:
        cluster.start()
        env = {**cluster.env, "PYTHONPATH": str(ROOT), "VLLM_CACHE_ROOT": str(root / "vllm"),
               "TMPDIR": str(root)}  # fmt: skip
        out = subprocess.run([sys.executable, __file__, "--driver", cluster.address],
                             cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=900)  # fmt: skip
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        assert out.returncode == 0 and lines, (
            f"driver failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
        )
        result = json.loads(lines[-1][len("RESULT ") :])
    finally:
        leftover = cluster.stop()
        if not leftover:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=1))  # shown with -s: node ids, answers, pool stats
    assert leftover == [], f"processes left running after the cluster stopped: {leftover}"
    assert result is not None
    pop, llm = result["population"], result["llm"]
    assert pop["nodes"] == 2 and len(set(pop["shard_nodes"])) == 2, pop
    assert pop["equal_to_single_process"] and pop["slot_steps"] > 0, pop
    assert len(set(llm["engine_nodes"])) == 2, llm
    assert llm["first_batch_in_order"] and llm["second_batch_in_order"], llm
    assert llm["valid_first"] >= llm["n"] - 1 and llm["valid_second"] >= llm["n"] - 1, llm
    assert llm["actor_failures"] >= 1 and llm["resent_chunks"] >= 1, llm
    assert llm["engines_after_kill"] == 1, llm
    rllib = result["rllib"]
    assert len(rllib["runner_nodes"]) == 2 and len(set(rllib["runner_nodes"])) == 2, rllib
    assert rllib["env_steps"] >= 256, rllib


# --------------------------------------------------------------------------- the driver


def _driver(address: str) -> dict:
    import numpy as np
    import ray
    from pydantic import BaseModel, Field

    from recoworld.envs.population.sharded import ShardedPopulation
    from recoworld.llm import ChatRequest, make_backend, prepare_embedded_model
    from recoworld.llm.config import LLMConfig

    ray.init(address=address, log_to_driver=False, configure_logging=False)
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]

    def run(pop: ShardedPopulation, steps: int = 25) -> list:
        obs = pop.reset(11)
        rng = np.random.default_rng(5)
        out = []
        for _ in range(steps):
            actions = np.argsort(rng.random((pop.capacity, 10)), axis=1)[:, :3]
            obs, reward, term, trunc, info = pop.step(actions)
            rows = pop.arrivals(obs)
            out.append((dict(obs), reward, term, trunc, info["click"], info["shared"], rows))
        return out

    ref_pop = ShardedPopulation(POPULATION, shards=1, blocks=2, use_ray=False)
    reference = run(ref_pop)
    ref_pop.close()
    sharded = ShardedPopulation(POPULATION, shards=2, blocks=2, use_ray=True)
    shard_nodes = sharded.node_ids()
    trajectory = run(sharded)
    sharded.close()
    equal = True
    for a, b in zip(reference, trajectory, strict=True):
        equal &= all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
        equal &= all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    slot_steps = int(sum(x[2].size for x in trajectory))

    class Answer(BaseModel):
        number: int = Field(ge=0, le=99)

    prepare_embedded_model()
    cfg = LLMConfig(
        backend="ray_vllm", cache=False, max_tokens=8, temperature=0.0,
        vllm={"max_model_len": 256, "cpu_threads": "0"},
        ray={"actors": 2, "num_cpus": 1, "cpu_binds": ["0", "1"], "kvcache_gib": 1,
             "replace_dead": False, "max_retries": 1},
    )  # fmt: skip
    pool = make_backend(cfg)
    engines = pool.actor_info()
    n = 6
    requests = [
        ChatRequest.of("Reply with JSON.", f"Write the number {i}.", request_id=f"req-{i}")
        for i in range(n)
    ]
    first = pool.generate(requests, Answer, on_invalid="record")
    ray.kill(pool.actors[0], no_restart=True)
    second = pool.generate(requests, Answer, on_invalid="record")
    llm = {
        "n": n,
        "engine_nodes": [e["node_id"] for e in engines],
        "first_batch_in_order": [c.request_id for c in first] == [r.request_id for r in requests],
        "second_batch_in_order": [c.request_id for c in second] == [r.request_id for r in requests],
        "valid_first": sum(c.ok for c in first),
        "valid_second": sum(c.ok for c in second),
        "actor_failures": pool.stats["actor_failures"],
        "resent_chunks": pool.stats["resent_chunks"],
        "engines_after_kill": len(pool.actors),
        "answers": [c.text for c in second],
    }
    pool.close()
    rllib = _rllib_on_cluster()
    ray.shutdown()
    return {
        "population": {"nodes": len(nodes), "shard_nodes": shard_nodes,
                       "equal_to_single_process": bool(equal), "slot_steps": slot_steps},
        "llm": llm,
        "rllib": rllib,
    }  # fmt: skip


def _rllib_on_cluster() -> dict:
    """One PPO iteration of ``experiments/configs/cluster_ppo_local.yaml``: two env runners
    (Ray actors stepping RecoWorld's batched vector env), one per node."""
    import ray

    from recoworld.rl.config import load_train_run
    from recoworld.rl.ppo.algorithm import build_algorithm_config

    world, cfg = load_train_run(ROOT / "experiments/configs/cluster_ppo_local.yaml")
    algo = build_algorithm_config(world, cfg).build_algo()
    try:
        result = algo.train()
        nodes = algo.env_runner_group.foreach_env_runner(
            lambda _: ray.get_runtime_context().get_node_id(), local_env_runner=False
        )
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
    finally:
        algo.stop()
    return {"runner_nodes": nodes, "env_steps": int(sampled)}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--driver":
        print("RESULT " + json.dumps(_driver(sys.argv[2])), flush=True)
    else:
        sys.exit(f"usage: {sys.argv[0]} --driver HEAD_ADDRESS")
