"""The `edge` command line, run as a real subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EDGE = [sys.executable, "-m", "edge.cli"]
BROKEN_SET = ROOT / "protos" / "edgecheck" / "descriptors.binpb"


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_check_reports_bad_template_and_conflict(tmp_path):
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{plaintext: true}}\nbackends:\n  - name: broken\n    target: 127.0.0.1:1\n    descriptors: {BROKEN_SET}\n"
    )
    result = _run("check", "--config", str(config))
    assert result.returncode == 1
    err = result.stderr
    assert "edgecheck.v1.BrokenService.BadTemplate" in err and "position" in err
    assert "/v1/things/{id}" in err and "cannot be told apart" in err
    assert "2 problem(s) found" in err


def test_check_passes_on_good_descriptors(tmp_path, demo_descriptor_set):
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{plaintext: true}}\nbackends:\n  - name: demo\n    target: 127.0.0.1:1\n    descriptors: {demo_descriptor_set}\n"
    )
    result = _run("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_check_reports_unreachable_backend(tmp_path, unused_port):
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{plaintext: true}}\nbackends:\n  - {{name: gone, target: '127.0.0.1:{unused_port}', timeout: 1s}}\n"
    )
    result = _run("check", "--config", str(config))
    assert result.returncode == 1
    assert "backend gone" in result.stderr


def test_invalid_config_names_key_and_problem(tmp_path):
    config = tmp_path / "edge.yaml"
    config.write_text(
        "listen: {plaintext: true}\nbackends:\n  - name: a\n    target: x:1\n    timeout: soon\n    extra_key: 1\n"
    )
    for command in ("check", "serve"):
        result = _run(command, "--config", str(config))
        assert result.returncode == 2
        assert "backends.0.timeout: invalid duration 'soon'" in result.stderr
        assert "backends.0.extra_key: Extra inputs are not permitted" in result.stderr
        assert "Traceback" not in result.stderr


def test_missing_tls_and_plaintext_is_refused(tmp_path):
    config = tmp_path / "edge.yaml"
    config.write_text("backends: [{name: a, target: 'x:1'}]\nlisten: {port: 8080}\n")
    result = _run("check", "--config", str(config))
    assert result.returncode == 2
    assert "listen: " in result.stderr and "plaintext" in result.stderr


def test_serve_then_reload_then_sigterm(tmp_path, demo_backend, unused_port):
    admin_port = unused_port
    config = tmp_path / "edge.yaml"
    config.write_text(
        "listen: {host: 127.0.0.1, port: 0, plaintext: true}\n"
        "lifecycle: {pre_drain_delay: 0s}\n"
        f"admin: {{port: {admin_port}}}\n"
        f"backends: [{{name: demo, target: '{demo_backend.target}'}}]\n"
    )
    proc = subprocess.Popen([*EDGE, "serve", "--config", str(config), "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        reload = _run("reload", "--config", str(config))
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert '"unchanged"' in reload.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_check_reports_missing_files_and_unknown_policy_methods(tmp_path, demo_descriptor_set):
    config = tmp_path / "edge.yaml"
    config.write_text(f"""
listen: {{tls: {{cert_file: {tmp_path}/nope.pem, key_file: {tmp_path}/nope.key}}}}
backends: [{{name: demo, target: '127.0.0.1:1', descriptors: {demo_descriptor_set}}}]
auth:
  issuers: [{{issuer: i, audiences: [a], algorithms: [RS256], jwks_file: {tmp_path}/jwks.json}}]
  policies:
    - {{match: "edgedemo.library.v1.LibraryService/GetShelff", auth: none}}
    - {{match: "edgedemo.library.v1.LibraryService/*", scopes_all_of: [read]}}
rate_limits:
  policies: [{{name: p, limit: 1, window: 1s, match: ["edgedemo.nope.v1.Gone/*"]}}]
""")
    result = _run("check", "--config", str(config))
    assert result.returncode == 1
    err = result.stderr
    assert f"listen.tls.cert_file: file {tmp_path}/nope.pem does not exist" in err
    assert "auth.issuers.0.jwks_file" in err
    assert "auth.policies.0.match: 'edgedemo.library.v1.LibraryService/GetShelff' names no method" in err
    assert "rate_limits.policies.0.match: 'edgedemo.nope.v1.Gone/*' names service edgedemo.nope.v1.Gone" in err
    assert "auth.policies.1" not in err
    assert "5 problem(s) found" in err
