"""The `observability` compose profile, the Prometheus config and the Grafana dashboard agree with
each other and with the metrics the code defines (docs/metrics.md, held to the registry by
test_metrics_labels.py). Docker is not needed: the files are read as YAML and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/ainfera.json").read_text())
DOCUMENTED = set(re.findall(r"`(ainfera_[a-z_]+?)(?:_total)?`", (ROOT / "docs/metrics.md").read_text()))


def _job(name: str) -> dict:
    [job] = [j for j in PROMETHEUS["scrape_configs"] if j["job_name"] == name]
    return job


def test_prometheus_and_grafana_run_under_the_observability_profile_with_committed_files():
    services = COMPOSE["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for name in ("gateway", "worker", "worker-bulk", "postgres", "redis"):
        assert "profiles" not in services[name]  # the default stack is unchanged


def test_prometheus_scrapes_the_gateway_and_every_worker_replica_where_they_listen():
    services = COMPOSE["services"]
    [gateway_sd] = _job("gateway")["dns_sd_configs"]
    assert gateway_sd["names"] == ["gateway"]
    assert str(gateway_sd["port"]) == services["gateway"]["command"][services["gateway"]["command"].index("--port") + 1]
    [worker_sd] = _job("worker")["dns_sd_configs"]
    assert sorted(worker_sd["names"]) == ["worker", "worker-bulk"]
    for name in worker_sd["names"]:
        env = services[name]["environment"]
        assert env["AINFERA_WORKER_METRICS_PORT"] == str(worker_sd["port"])
        assert env["AINFERA_WORKER_METRICS_HOST"] == "0.0.0.0"
        assert env["AINFERA_DATABASE_URL"] == services["gateway"]["environment"]["AINFERA_DATABASE_URL"]


def test_every_dashboard_query_names_a_defined_metric():
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    names = {name for e in exprs for name in re.findall(r"ainfera_[a-z_]+", e)}
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}
    assert used <= DOCUMENTED, used - DOCUMENTED
    # Every family the code defines is on the dashboard, except the scrape's own error count.
    assert DOCUMENTED - used == {"ainfera_scrape_errors"}
    assert all(p["datasource"]["uid"] == "prometheus" for p in DASHBOARD["panels"] if p["type"] != "row")
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["uid"] == "prometheus"
