"""`ainfera-dispatch batch submit` and `batch results` against the gateway, worker and simulator as processes."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def line(custom_id: str, model: str = "gpt-oss-20b@groq", text: str = "hi") -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": model, "messages": [{"role": "user", "content": text}]}})


def write_jsonl(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines))
    return path


def cli(system, *args: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    """The console script with the tenant's key in AINFERA_API_KEY (or none at all)."""
    env = dict(system.env)
    if api_key is not None:
        env["AINFERA_API_KEY"] = api_key
    return subprocess.run([sys.executable, "-m", "shared.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def tenant(system) -> dict[str, str]:
    return system.new_tenant("cli-batch")


@pytest.fixture(scope="module")
def finished(system, tenant, tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], dict]:
    """A small file, one line naming an unknown model, submitted with --wait."""
    path = write_jsonl(tmp_path_factory.mktemp("submit") / "small.jsonl",
                       line("a"), line("b", text="hello"), line("c", model="nope@nowhere"), line("d"))
    out = cli(system, "batch", "submit", str(path), "--wait", "--metadata", "run=e2e", "--metadata", "note=a=b",
              api_key=tenant["api_key"])
    return out, json.loads(out.stdout)


def test_submit_wait_prints_the_completed_batch_and_exits_0(finished, tenant):
    out, batch = finished
    assert out.returncode == 0, out.stderr
    assert batch["object"] == "batch" and batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    assert batch["metadata"] == {"run": "e2e", "note": "a=b"}
    assert batch["output_file_id"] and batch["error_file_id"]
    assert f"batch {batch['id']} created" in out.stderr
    assert f"batch {batch['id']} completed: 3 succeeded, 1 failed" in out.stderr
    assert tenant["api_key"] not in out.stdout + out.stderr


def test_results_writes_every_custom_id_once_to_the_output_or_error_file(system, tenant, finished, tmp_path):
    batch = finished[1]
    out_path, err_path = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    out = cli(system, "batch", "results", batch["id"], "-o", str(out_path), "--errors", str(err_path),
              "--api-key", tenant["api_key"])
    assert out.returncode == 0, out.stderr
    outputs, errors = read_jsonl(out_path), read_jsonl(err_path)
    assert [x["custom_id"] for x in outputs] == ["a", "b", "d"]
    assert all(x["response"]["status_code"] == 200 and x["error"] is None for x in outputs)
    assert [x["custom_id"] for x in errors] == ["c"]
    assert errors[0]["response"]["status_code"] == 404
    assert f"wrote 3 line(s) to {out_path}" in out.stderr and f"wrote 1 line(s) to {err_path}" in out.stderr
    assert json.loads(out.stdout) == {"batch_id": batch["id"], "status": "completed",
                                      "output": {"path": str(out_path), "lines": 3},
                                      "errors": {"path": str(err_path), "lines": 1}}
    assert not list(tmp_path.glob("*.part"))


def test_results_without_errors_flag_mentions_the_error_file(system, tenant, finished, tmp_path):
    out = cli(system, "batch", "results", finished[1]["id"], "-o", str(tmp_path / "out.jsonl"),
              api_key=tenant["api_key"])
    assert out.returncode == 0, out.stderr
    assert "fetch it with --errors" in out.stderr
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 3


def test_a_bad_line_is_named_and_no_batch_is_created(system, tenant, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", line("a"), '{"custom_id": "b", "method": "POST",', line("c"))
    out = cli(system, "batch", "submit", str(path), "--wait", api_key=tenant["api_key"])
    assert out.returncode == 1
    assert "Line 2" in out.stderr and "invalid_batch_line" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert len([x for x in out.stderr.splitlines() if x.startswith("error:")]) == 1


def test_results_of_an_unfinished_batch_is_a_clear_error(system, tenant, tmp_path):
    path = write_jsonl(tmp_path / "slow.jsonl", *(line(f"s{i}", text="[sim:latency=2000] hi") for i in range(3)))
    submitted = cli(system, "batch", "submit", str(path), api_key=tenant["api_key"])
    assert submitted.returncode == 0, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert batch["status"] in ("validating", "in_progress")

    out = cli(system, "batch", "results", batch["id"], "-o", str(tmp_path / "out.jsonl"), api_key=tenant["api_key"])
    assert out.returncode == 1
    assert f"batch {batch['id']} has not finished" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_results_of_an_unknown_batch_is_a_404_message(system, tenant, tmp_path):
    out = cli(system, "batch", "results", "batch_nope", "-o", str(tmp_path / "out.jsonl"), api_key=tenant["api_key"])
    assert out.returncode == 1
    assert "404" in out.stderr and "batch_nope" in out.stderr and "Traceback" not in out.stderr


def test_a_wrong_api_key_is_a_clear_error_that_does_not_echo_the_key(system, tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", line("a"))
    wrong = "sk-ainf-wrong-key-0123456789"
    out = cli(system, "batch", "submit", str(path), "--api-key", wrong)
    assert out.returncode == 1
    assert "401" in out.stderr and "Incorrect API key" in out.stderr
    assert "Traceback" not in out.stderr and wrong not in out.stderr + out.stdout


def test_a_missing_api_key_is_a_usage_error(system, tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", line("a"))
    out = cli(system, "batch", "submit", str(path))
    assert out.returncode == 2
    assert "AINFERA_API_KEY" in out.stderr and "Traceback" not in out.stderr


def test_usage_errors_exit_2(system, tenant, tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", line("a"))
    bad_metadata = cli(system, "batch", "submit", str(path), "--metadata", "novalue", api_key=tenant["api_key"])
    assert bad_metadata.returncode == 2 and "KEY=VALUE" in bad_metadata.stderr
    missing_file = cli(system, "batch", "submit", str(tmp_path / "absent.jsonl"), api_key=tenant["api_key"])
    assert missing_file.returncode == 2 and "is not a file" in missing_file.stderr
    no_output = cli(system, "batch", "results", "batch_x", api_key=tenant["api_key"])
    assert no_output.returncode == 2


def test_an_idempotency_key_makes_a_repeated_submit_return_the_same_batch(system, tenant, tmp_path):
    path = write_jsonl(tmp_path / "once.jsonl", line("a"), line("b"))
    first = cli(system, "batch", "submit", str(path), "--idempotency-key", "cli-e2e-1", api_key=tenant["api_key"])
    again = cli(system, "batch", "submit", str(path), "--idempotency-key", "cli-e2e-1", api_key=tenant["api_key"])
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert json.loads(first.stdout)["id"] == json.loads(again.stdout)["id"]


@contextlib.contextmanager
def waiting_submit(system, tenant, path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`batch submit --wait` running, once it has printed the batch it created; killed on the way out."""
    env = {**system.env, "AINFERA_API_KEY": tenant["api_key"]}
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli.main", "batch", "submit", str(path), "--wait"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        created = ""
        while " created from " not in created:  # printed once the batch exists, before waiting starts
            created = proc.stderr.readline()
            assert created, "the command ended before creating the batch"
        yield proc, created.split()[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_while_waiting_leaves_the_batch_running_and_names_it(system, tenant, tmp_path):
    path = write_jsonl(tmp_path / "slow.jsonl", *(line(f"s{i}", text="[sim:latency=2000] hi") for i in range(2)))
    with waiting_submit(system, tenant, path) as (proc, batch_id):
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"interrupted: batch {batch_id} keeps running on the server" in stderr
    assert "Traceback" not in stderr
    assert json.loads(stdout)["id"] == batch_id


def test_waiting_backs_off_while_the_gateway_is_unreachable_then_gives_up_naming_the_batch():
    from shared.cli.batch import POLL_ERROR_MAX_S, POLL_MAX_FAILURES, poll
    from shared.cli.gateway_client import CliError, connect

    pauses: list[float] = []
    with connect("http://127.0.0.1:1", "sk-ainf-unused") as client, pytest.raises(CliError) as e:
        list(poll(client, {"id": "batch_gone", "status": "in_progress"}, sleep=pauses.append))
    assert "cannot reach the gateway" in e.value.message and "batch batch_gone keeps running" in e.value.message
    assert len(pauses) == POLL_MAX_FAILURES
    assert pauses[0] == 1.0 and pauses == sorted(pauses) and pauses[-1] == POLL_ERROR_MAX_S


def test_a_cancelled_batch_ends_the_wait_with_exit_1_and_its_lines_are_accounted_for(system, tenant, tmp_path):
    import httpx

    ids = [f"k{i}" for i in range(4)]
    path = write_jsonl(tmp_path / "slow.jsonl", *(line(i, text="[sim:latency=1500] hi") for i in ids))
    with waiting_submit(system, tenant, path) as (proc, batch_id):
        r = httpx.post(f"{system.base_url}/v1/batches/{batch_id}/cancel",
                       headers={"authorization": f"Bearer {tenant['api_key']}"})
        assert r.status_code == 200, r.text
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert json.loads(stdout)["status"] == "cancelled"
    assert f"batch {batch_id} was cancelled" in stderr

    out_path, err_path = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    got = cli(system, "batch", "results", batch_id, "-o", str(out_path), "--errors", str(err_path),
              api_key=tenant["api_key"])
    # Lines already running when the cancel came finish; the others are reported as cancelled.
    outputs = read_jsonl(out_path) if out_path.exists() else []
    errors = read_jsonl(err_path) if err_path.exists() else []
    assert sorted(x["custom_id"] for x in outputs + errors) == ids
    assert {x["error"]["code"] for x in errors if x["error"]} <= {"batch_cancelled"}
    assert got.returncode == (0 if outputs else 1), got.stderr
    assert "Traceback" not in got.stderr
