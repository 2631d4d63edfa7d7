"""Metric labels stay bounded and say nothing private: catalog labels fold into `other` past their
bound, fixed sets fold anything unknown, and the metric table in docs/metrics.md lists every family."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import Metrics
from shared.metrics.labels import OTHER, CatalogLabel, Folded, error_codes, status_label
from shared.metrics.workers import WorkerSlots

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
FORBIDDEN_LABELS = {"tenant", "tenant_id", "key", "key_id", "api_key", "job_id", "batch_id", "file_id", "request_id",
                    "prompt", "path", "user"}


def families(m: Metrics) -> dict[str, set[frozenset[tuple[str, str]]]]:
    out: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for fam in text_string_to_metric_families(generate_latest(m.registry).decode()):
        for s in fam.samples:
            out.setdefault(fam.name, set()).add(frozenset(s.labels.items()))
    return out


def test_a_catalog_label_folds_past_its_bound():
    label = CatalogLabel(limit=3)
    assert [label(v) for v in ("a@x", "b@x", "c@x", "d@x", "a@x")] == ["a@x", "b@x", "c@x", OTHER, "a@x"]


def test_a_catalog_label_never_takes_free_text():
    label = CatalogLabel()
    for value in ("", None, "Summarise the plot of Hamlet", "x" * 97, "caf\u00e9", "tab\there", "sk-ainf-" + "a" * 90):
        assert label(value) == OTHER, value
    assert label("llama-3.3-70b@groq") == "llama-3.3-70b@groq"


def test_fixed_sets_fold_unknown_values():
    kinds = Folded(("sync", "batch"))
    assert (kinds("sync"), kinds("nightly"), kinds(None)) == ("sync", OTHER, OTHER)
    assert status_label(200) == "200" and status_label(999) == OTHER and status_label(-1) == OTHER


def test_error_codes_hold_every_default_code_of_the_hierarchy():
    from shared.errors import BudgetExceeded, RateLimited, UpstreamServerError, UpstreamTimeout

    codes = error_codes()
    for cls in (BudgetExceeded, RateLimited, UpstreamServerError, UpstreamTimeout):
        assert cls.default_code in codes
    assert len(codes) < 100


def test_explicit_codes_are_raised_somewhere():
    from shared.metrics.labels import EXPLICIT_CODES

    root = Path(__file__).resolve().parents[2]
    source = "".join(p.read_text(encoding="utf-8") for d in ("shared", "gateway") for p in (root / d).rglob("*.py")
                     if p.name != "labels.py")
    assert [c for c in sorted(EXPLICIT_CODES) if f'"{c}"' not in source] == []


def test_a_thousand_models_make_a_bounded_number_of_series():
    m = Metrics()
    for i in range(1000):
        m.upstream_ok(f"p{i % 40}", f"model-{i}@p{i % 40}", 0.1, 1)
        m.upstream_failed(f"p{i % 40}", f"model-{i}@p{i % 40}", f"weird_code_{i}", 1)
        m.dispatched(f"kind-{i}", f"status-{i}", f"code-{i}")
        m.request("BREW", f"/raw/path/{i}", 200 + i, "tenant", 0.01)
        m.appended(f"event.{i}")
    fam = families(m)
    models = {dict(lab)["model"] for lab in fam["ainfera_upstream_calls"]}
    assert OTHER in models and len(models) <= 513
    codes = {dict(lab)["code"] for lab in fam["ainfera_upstream_errors"]}
    assert codes == {OTHER}
    assert {dict(lab)["kind"] for lab in fam["ainfera_dispatch_jobs"]} == {OTHER}
    assert {dict(lab)["event_type"] for lab in fam["ainfera_audit_appends"]} == {OTHER}
    # The route is what the middleware gives (a template); the method and the status are folded here.
    assert {dict(lab)["method"] for lab in fam["ainfera_http_requests"]} == {OTHER}
    assert len({dict(lab)["status"] for lab in fam["ainfera_http_requests"]}) <= 401


def test_no_metric_carries_a_private_label_and_the_doc_lists_every_family():
    m = Metrics()
    m.request("POST", "/v1/chat/completions", 200, "tenant", 0.01)
    m.waited("interactive", "sync", 0.001)
    m.dispatched("sync", "succeeded", None)
    m.upstream_ok("groq", "gpt-oss-20b@groq", 0.2, 2)
    m.upstream_failed("groq", "gpt-oss-20b@groq", "upstream_server_error", 3)
    m.fell_back("groq", "gpt-oss-20b@groq")
    m.billed("groq", "gpt-oss-20b@groq", 0.001, 10, 20)
    m.appended("inference.routed")
    m.budget_refusals.labels("sync").inc()
    m.rate_limited.labels("interactive", "tenant", "requests").inc()
    m.reconciler_requeued.inc()
    for g in (m.queue_depth, m.queue_oldest_age):
        g.labels("interactive").set(0)
    m.batch_lines.labels("pending").set(0)
    m.fanout_last_run.labels("passed").set(0)
    m.scrape_errors.labels("redis").inc()
    m.sync_end_to_end.observe(0.1)
    m.stream_first_token.observe(0.1)

    class W:
        queue_name, max_jobs, job_counter = "ainfera:queue:batch", 4, 1
        jobs_complete, jobs_failed, jobs_retried = 2, 0, 1

    m.registry.register(WorkerSlots([W()]))
    fam = families(m)
    for name, label_sets in fam.items():
        for labels in label_sets:
            assert not FORBIDDEN_LABELS & {k for k, _ in labels}, name
    documented = set(re.findall(r"`(ainfera_[a-z_]+?)(?:_total)?`", DOC.read_text(encoding="utf-8")))
    ours = {name for name in fam if name.startswith("ainfera_")}
    assert ours == documented
