"""`--on` / `--fleet` end to end against real sshd servers on 127.0.0.1 (tests/remote/sshd.py): a job on the host
as a device, the content-addressed copy, and the SSH faults, each a clear error for its device while the others
finish, nothing left running on the device. (The simulated Pi, sshd inside the arm64 system: tests/test_arm64.py.)"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.models import conv_net, save
from tests.remote.conftest import cli_env, fleet_file
from tests.remote.sshd import Sshd, free_port, keygen

pytestmark = pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(),
                                reason="needs openssh-server (.ci/run installs it)")


def edgekit_cli(args, ssh_home, timeout=300):
    code = "import sys; from edgekit.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(ssh_home))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote_model")
    path = Path(save(conv_net(batch=1), folder / "conv_net.onnx"))
    np.save(folder / "x.npy", np.random.default_rng(0).normal(size=(1, 3, 16, 16)).astype(np.float32))
    return path


def test_fleet_bench_on_a_device_and_unchanged_files_are_not_sent_again(model, host_device, ssh_home, tmp_path):
    fleet = fleet_file(tmp_path / "devices.toml", [host_device], ssh_home)
    args = ["bench", str(model), "--iterations", "5", "--min-seconds", "0.2", "--warmup", "1", "--memory",
            "inprocess", "--fleet", str(fleet), "--json", str(tmp_path / "fleet.json")]
    first = edgekit_cli(args, ssh_home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "host" in first.stdout and "desktop-x86-64" in first.stdout
    doc = json.loads((tmp_path / "fleet.json").read_text())
    (dev,) = doc["devices"]
    assert dev["error"] is None and dev["report"]["results"], dev
    assert dev["sent"][model.name] == {"sent": 1, "kept": 0, "bytes": model.stat().st_size}
    row = next(r for r in doc["rows"] if r["format"] == "onnx")
    assert row["median_ms"] > 0 and row["fps"] == pytest.approx(1000 / row["median_ms"], rel=0.01)
    again = edgekit_cli(args[:-1] + [str(tmp_path / "again.json")], ssh_home)
    assert again.returncode == 0, again.stdout + again.stderr
    dev = json.loads((tmp_path / "again.json").read_text())["devices"][0]
    assert dev["sent"][model.name] == {"sent": 0, "kept": 1, "bytes": 0}  # the device had it: nothing re-sent


def test_run_on_one_device_relays_its_table_and_brings_back_files(model, host_device, ssh_home, tmp_path):
    fleet = fleet_file(tmp_path / "devices.toml", [host_device], ssh_home)
    x = model.parent / "x.npy"
    r = edgekit_cli(["run", str(model), "--input", f"x={x}", "--save", str(tmp_path / "out"), "--on", "host",
                     "--fleet", str(fleet)], ssh_home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "device host" in r.stdout and "prob: shape [1, 5]" in r.stdout
    import onnxruntime as ort

    want = ort.InferenceSession(str(model)).run(["prob"], {"x": np.load(x)})[0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "prob.npy"), want, rtol=1e-5, atol=1e-6)


def test_an_address_whose_device_has_no_edgekit_says_what_to_install(model, host_sshd, ssh_home):
    r = edgekit_cli(["run", str(model), "--input", f"x={model.parent / 'x.npy'}", "--on",
                     f"ssh://root@127.0.0.1:{host_sshd.port}"], ssh_home)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is not installed there" in r.stderr and "edgekit[runtime]" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture
def other_servers(tmp_path, ssh_home):
    """One sshd that accepts another key only (auth refused) and one whose host key nobody trusts."""
    stranger = keygen(tmp_path / "stranger_key")
    refuses = Sshd(tmp_path / "refuses", stranger.with_suffix(".pub")).start()
    with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
        f.write(refuses.host_key_line())
    unknown = Sshd(tmp_path / "unknown", ssh_home / ".ssh" / "id_ed25519.pub").start()
    yield refuses, unknown
    refuses.stop()
    unknown.stop()


def test_each_ssh_fault_is_that_devices_error_while_the_others_finish(model, host_device, other_servers, ssh_home,
                                                                     tmp_path):
    refuses, unknown = other_servers
    devices = [host_device,
               {"name": "closed", "address": f"ssh://root@127.0.0.1:{free_port()}"},
               {"name": "refuses", "address": f"ssh://root@127.0.0.1:{refuses.port}"},
               {"name": "unknown", "address": f"ssh://root@127.0.0.1:{unknown.port}"}]
    fleet = fleet_file(tmp_path / "devices.toml", devices, ssh_home)
    t0 = time.monotonic()
    r = edgekit_cli(["bench", str(model), "--iterations", "5", "--min-seconds", "0.2", "--warmup", "1", "--memory",
                     "inprocess", "--fleet", str(fleet), "--json", str(tmp_path / "f.json")], ssh_home)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    by = {d["device"]: d for d in json.loads((tmp_path / "f.json").read_text())["devices"]}
    assert by["host"]["error"] is None and by["host"]["exit_code"] == 0
    assert "cannot reach the device: connection refused" in by["closed"]["error"]
    assert "authentication refused for user root" in by["refuses"]["error"]
    assert "ssh-copy-id" in by["refuses"]["error"]
    assert "unknown host key" in by["unknown"]["error"] and f"ssh-keyscan -p {unknown.port} 127.0.0.1" in \
        by["unknown"]["error"]
    for name in ("closed", "refuses", "unknown"):
        assert name in r.stdout and "ERROR" in r.stdout
    print(f"fleet of 4 with 3 faults: {time.monotonic() - t0:.1f} s")


def _jobs_under(workdir: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(workdir in a for a in (p.info["cmdline"] or [])):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_a_connection_dropped_mid_job_is_that_devices_error_and_nothing_is_left_running(
        model, host_device, ssh_home, tmp_path):
    from edgekit.remote import fleet as fleet_mod

    victim_sshd = Sshd(tmp_path / "victim", ssh_home / ".ssh" / "id_ed25519.pub").start()
    try:
        with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
            f.write(victim_sshd.host_key_line())
        victim = {**host_device, "name": "victim", "address": f"ssh://root@127.0.0.1:{victim_sshd.port}",
                  "workdir": str(tmp_path / "victim-work")}
        devices = fleet_mod.load(fleet_file(tmp_path / "devices.toml", [host_device, victim], ssh_home))
        argv = ["bench", str(model), "--iterations", "5", "--min-seconds", "6", "--warmup", "1", "--memory",
                "inprocess"]
        results = {}
        worker = threading.Thread(target=lambda: results.update(r=fleet_mod.run_fleet(devices, argv)))
        worker.start()
        deadline = time.monotonic() + 120
        while not _jobs_under(victim["workdir"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _jobs_under(victim["workdir"]), "the job never started on the victim"
        time.sleep(1.0)
        for pid in victim_sshd.session_pids():  # the connection's sshd processes die: the link drops
            for p in [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True):
                if p.name().startswith("sshd"):
                    p.send_signal(signal.SIGKILL)
        worker.join(180)
        host, dropped = results["r"]
        assert host.error is None and host.exit_code == 0, host.output
        assert dropped.error and "dropped during the job" in dropped.error, (dropped.error, dropped.output)
        deadline = time.monotonic() + 30
        while _jobs_under(victim["workdir"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _jobs_under(victim["workdir"]), "the job is still running on the device"
    finally:
        victim_sshd.stop()
