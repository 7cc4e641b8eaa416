"""The code location loads, and its graph is what review expects (a change here is a change there)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.resources import ContactsSettings
from pipelines.definitions import defs, make_definitions
from pipelines.sensors import new_export_days
from tests.conftest import rec, write_jsonl


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    edges = sorted(
        (parent.to_user_string(), key.to_user_string())
        for key in graph.get_all_asset_keys()
        for parent in graph.get(key).parent_keys
    )
    assert edges == [
        ("admin_decisions", "contact_ids"),
        ("admin_decisions", "interactions"),
        ("askvault_interactions", "interactions"),
        ("contact_ids", "contact_profiles"),
        ("contact_profiles", "crm_links"),
        ("contact_profiles", "merge_proposals"),
        ("contacts_snapshot", "published_contacts"),
        ("crm_links", "contacts_snapshot"),
        ("email_interactions", "interactions"),
        ("hubspot_records", "crm_links"),
        ("hubspot_records", "identity_clusters"),
        ("identity_clusters", "contact_ids"),
        ("interactions", "identity_clusters"),
        ("merge_proposals", "contacts_snapshot"),
        ("published_contacts", "matching_reports"),
        ("published_contacts", "nightly_exports"),
        ("salesforce_records", "crm_links"),
        ("salesforce_records", "identity_clusters"),
        ("slack_interactions", "interactions"),
        ("sms_interactions", "interactions"),
        ("whatsapp_interactions", "interactions"),
    ]
    checks = sorted(k.name for k in graph.asset_check_keys)
    assert checks == [
        "every_interaction_has_live_contact",
        "gx_quality_suites",
        "interaction_ids_unique",
        "no_contact_over_hub_limit",
        "publish_gates",
        "redirects_point_to_live_contacts",
    ]
    ingest = sorted(
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def is not None
    )
    assert ingest == [
        "askvault_interactions",
        "email_interactions",
        "hubspot_records",
        "salesforce_records",
        "slack_interactions",
        "sms_interactions",
        "whatsapp_interactions",
    ]
    assert sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")) == [
        "build_contacts",
        "ingest_exports",
        "nightly_contacts",
        "purge_state",
    ]
    # The nightly schedule runs the night's whole work (ingest, then build), as `contacts run`.
    assert [(s.name, s.job_name) for s in defs.schedules] == [
        ("nightly_contacts_run", "nightly_contacts"),
        ("weekly_retention_purge", "purge_state"),
    ]
    assert [s.name for s in defs.sensors] == ["new_export_days"]


def test_sensor_requests_only_new_or_changed_days(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_jsonl(exports, "2026-11-01", "a.jsonl", [rec("x1")])
    write_jsonl(exports, "2026-11-02", "a.jsonl", [rec("x2")])
    settings = ContactsSettings(exports_dir=str(exports), db_path=str(tmp_path / "c.duckdb"))
    local = make_definitions(settings)
    # Stage one day through the real ingest job; the sensor then asks only for the other.
    local.resolve_job_def("ingest_exports").execute_in_process(partition_key="2026-11-01")
    # The settings resource sets up and tears down (the run lock), so its context is a `with`.
    with dg.build_sensor_context(resources={"settings": settings}) as context:
        requests = list(new_export_days(context))
    assert [r.partition_key for r in requests] == ["2026-11-02"]
    # A run request names only the source whose day changed, not every ingest asset.
    assert [[k.to_user_string() for k in r.asset_selection or []] for r in requests] == [
        ["askvault_interactions"]
    ]


def test_code_location_loads_from_workspace_and_dg() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    bin_dir = Path(sys.executable).parent
    for cmd in (
        [str(bin_dir / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        [str(bin_dir / "dg"), "check", "defs"],
    ):
        result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
