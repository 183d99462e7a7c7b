"""`callintel serve` against a real Prefect server: its scheduler makes the nightly runs at the configured time.

Prefect 3.8.8's scheduler failed on every loop with SQLAlchemy 2.1 ("Can't evaluate bulk DML statement"), so a
served deployment never ran, silently; and without a server there is no scheduler at all."""
import json
import shutil
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent


def _env(tmp_path: Path, api: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api:
        env["PREFECT_API_URL"] = api
    return env


def _post(url: str, body: dict) -> object:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as response:
        return json.loads(response.read())


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": str(ROOT / "data/demo"), "out": str(tmp_path / "out"),
                                      "signals": str(ROOT / "signals"),
                                      "schedule": {"cron": "30 2 * * *", "timezone": "Europe/London"}}))
    return config


def test_serve_without_a_prefect_server_refuses_in_one_line(tmp_path):
    served = subprocess.run([str(BIN / "callintel"), "serve", "--config", str(_config(tmp_path))],
                            env=_env(tmp_path, None), capture_output=True, text=True, timeout=120)
    assert served.returncode == 2
    assert served.stderr.strip().splitlines() == [
        "Error: callintel serve needs a Prefect server: a temporary one schedules nothing. Start `prefect server "
        "start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"]


def test_a_served_night_is_scheduled_by_the_prefect_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = _env(tmp_path, api)
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{api}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the Prefect server did not start"
                time.sleep(0.5)
        served = subprocess.Popen([str(BIN / "callintel"), "serve", "--config", str(_config(tmp_path))], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, runs = time.monotonic() + 90, []
        while not runs and time.monotonic() < deadline:
            time.sleep(1)
            runs = _post(f"{api}/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
        assert runs, "the server's scheduler made no run of the served deployment"
        starts = sorted(datetime.fromisoformat(r["expected_start_time"]).astimezone(ZoneInfo("Europe/London"))
                        for r in runs)
        assert all((t.hour, t.minute) == (2, 30) for t in starts) and len({t.date() for t in starts}) == len(starts)
        assert {r["parameters"]["config"] for r in runs} == {str(tmp_path / "callintel.yaml")}
    finally:
        for proc in (served, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_a_served_night_an_error_stopped_is_tried_again_and_does_the_rest(tmp_path, prefect_harness):
    """The share the transcripts come from is not mounted when the night starts: the night fails, and its retry,
    after the share is back, stores every call. Each try is a run of its own in `runs`."""
    import threading

    import flows
    from pipeline.config import load_config
    from pipeline.store import Store

    tx, out = tmp_path / "tx", tmp_path / "out"
    config = tmp_path / "callintel.yaml"
    config.write_text(yaml.safe_dump({"input": str(tmp_path / "none"), "transcripts": str(tx), "out": str(out),
                                      "signals": str(ROOT / "signals"),
                                      "schedule": {"retries": 1, "retry_delay_minutes": 0.1}}))

    def mount_once_the_night_failed():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                json.loads(p.read_text()).get("status") == "failed" for p in out.glob("runs/*.json")):
            time.sleep(0.05)
        shutil.copytree(ROOT / "data/demo_transcripts", tx)

    share = threading.Thread(target=mount_once_the_night_failed)
    share.start()
    summary = flows.served_flow(load_config(str(config)))(config=str(config))
    share.join()
    assert (summary["status"], summary["counts"]["imported"]) == ("ok", 10)
    runs = sorted(Store(out).read("runs").to_pylist(), key=lambda r: r["started_at"])
    assert [(r["status"], r["imported"]) for r in runs] == [("failed", 0), ("ok", 10)]
    line = config.read_text().splitlines().index(f"transcripts: {tx}") + 1  # the line to mend, named with the folder
    assert runs[0]["notes"] == [f"stopped by an error before its first step: FileNotFoundError: {config}:{line}: "
                                f"transcripts folder {tx} does not exist; what it had committed was kept and the next "
                                "run does the rest"]
