"""Incremental predict: a night that scores only new or changed contacts gives the proposals a
full predict gives (real Splink runs on small data)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from assets.identity import AMBIGUOUS_FILE
from assets.matching import CONTACTS_FILE
from assets.resources import ContactsSettings
from contacts.demo import GeneratorConfig, generate_exports
from contacts.runner import run_pipeline
from dedup.matching.incremental import (
    STATE_FILE,
    IncrementalConfig,
    predict_nightly,
    reachable_from,
)
from dedup.matching.model import TrainedModel, predict
from dedup.matching.proposals import predictions_frame
from dedup.matching.records import contact_records
from dedup.matching.reports import write_reports
from tests.conftest import SECRET, query

TOLERANCE = 1e-9


def _compare(incremental: pl.DataFrame, full: pl.DataFrame) -> None:
    """Same pairs, same probabilities and weights (to 1e-9), same explanations."""
    keys = ["contact_id_l", "contact_id_r"]
    joined = incremental.join(full, on=keys, how="full", coalesce=True, suffix="_full")
    assert joined.filter(pl.col("match_probability_full").is_null()).height == 0, "extra pairs"
    assert joined.filter(pl.col("match_probability").is_null()).height == 0, "missing pairs"
    for column in ("match_probability", "match_weight"):
        diff = joined.select((pl.col(column) - pl.col(f"{column}_full")).abs().max()).item()
        assert (diff or 0.0) <= TOLERANCE, f"{column} differs by {diff}"
    assert (joined["explanation"] == joined["explanation_full"]).all()


def _by_id(pairs: pl.DataFrame) -> pl.DataFrame:
    """Each pair with its smaller id on the left, every `_l`/`_r` column swapped with it."""
    swap = pl.col("unique_id_l") > pl.col("unique_id_r")
    sides = [(c, c[:-2] + "_r") for c in pairs.columns if c.endswith("_l")]
    return pairs.with_columns(
        *(pl.when(swap).then(pl.col(r)).otherwise(pl.col(lc)).alias(lc) for lc, r in sides),
        *(pl.when(swap).then(pl.col(lc)).otherwise(pl.col(r)).alias(r) for lc, r in sides),
    ).sort("unique_id_l", "unique_id_r")


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory):
    """Night 1 on four export days (full predict), night 2 with a fifth day (incremental)."""
    root = tmp_path_factory.mktemp("incremental")
    generated = root / "generated"
    generate_exports(generated, GeneratorConfig(persons=400, days=5, seed=11, secret=SECRET))
    days = sorted(p.name for p in (generated / "askvault").iterdir())
    exports = root / "exports"
    for day in days[:-1]:
        shutil.copytree(generated / "askvault" / day, exports / "askvault" / day)
    settings = ContactsSettings(exports_dir=str(exports), db_path=str(root / "contacts.duckdb"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASKVAULT_IDENTITY_SECRET", SECRET)
        run_pipeline(settings)
        night1_state = root / "night1-matching"
        shutil.copytree(settings.matching_state_dir, night1_state)
        shutil.copytree(generated / "askvault" / days[-1], exports / "askvault" / days[-1])
        run_pipeline(settings)
    return settings, night1_state


def _tonight(settings: ContactsSettings) -> tuple[pl.DataFrame, TrainedModel]:
    work = settings.layout.work_dir
    records = contact_records(
        pl.read_parquet(work / CONTACTS_FILE), pl.read_parquet(work / AMBIGUOUS_FILE)
    )
    model = TrainedModel.load(settings.model_path)
    assert model is not None
    return records, model


@pytest.fixture(scope="module")
def full_tonight(nights) -> pl.DataFrame:
    """A full predict of tonight's records at the proposal threshold, made once for the module:
    the reference several tests compare an incremental night with (predict is deterministic and
    no test changes the frame; a test that changes the model loads its own)."""
    settings, _ = nights
    records, model = _tonight(settings)
    return predict(records, model, settings.proposal_threshold)[0]


def test_night_two_is_incremental_and_equals_a_full_run(nights, full_tonight) -> None:
    settings, night1_state = nights
    state = json.loads((settings.matching_state_dir / STATE_FILE).read_text())
    assert state["last_run"]["mode"] == "incremental", state["last_run"]
    assert 0 < state["last_run"]["changed"] < state["last_run"]["contacts"]
    full = full_tonight
    assert full.height > 0
    published = query(
        settings.layout.db_path,
        "SELECT contact_id_l, contact_id_r, match_probability, match_weight, explanation "
        "FROM merge_proposals WHERE status = 'pending'",
    )
    _compare(published, predictions_frame(full))


def test_same_night_from_last_nights_state_equals_full(
    nights, full_tonight, tmp_path: Path
) -> None:
    """The function itself, replayed from night 1's state: incremental, and equal to full."""
    settings, night1_state = nights
    records, model = _tonight(settings)
    state = tmp_path / "state"
    shutil.copytree(night1_state, state)
    run = predict_nightly(records, model, settings.proposal_threshold, state)
    assert run.mode == "incremental" and run.changed < records.height and run.carried_pairs > 0
    full = full_tonight
    _compare(predictions_frame(run.scored), predictions_frame(full))


def test_removed_renamed_and_new_contacts(nights, tmp_path: Path) -> None:
    """Contacts leave (tf of their values falls, so unchanged pairs rise), change company and
    arrive; each night equals a full predict over that night's records."""
    settings, _ = nights
    records, model = _tonight(settings)
    threshold = settings.proposal_threshold
    state = tmp_path / "state"
    night1 = records.filter(pl.int_range(pl.len()) % 10 != 0)  # a tenth arrives on night 2
    first = predict_nightly(night1, model, threshold, state)
    assert first.mode == "full"
    night2 = records.filter(pl.int_range(pl.len()) % 7 != 0).with_columns(
        pl.when(pl.int_range(pl.len()) % 31 == 0)
        .then(pl.lit("globex"))
        .otherwise(pl.col("company"))
        .alias("company")
    )
    second = predict_nightly(night2, model, threshold, state)
    assert second.mode == "incremental" and second.headroom_bits < first.headroom_bits
    full, _ = predict(night2, model, threshold)
    _compare(predictions_frame(second.scored), predictions_frame(full))


def test_pairs_of_two_new_contacts_are_found_once(nights, full_tonight, tmp_path: Path) -> None:
    """Both sides of a proposal arrive the same night: the changed contacts are also scored
    against each other, each pair once, never a contact with itself."""
    settings, _ = nights
    records, model = _tonight(settings)
    threshold = settings.proposal_threshold
    full = full_tonight
    both = full.head(5).select("unique_id_l", "unique_id_r")
    arriving = pl.concat([both.get_column("unique_id_l"), both.get_column("unique_id_r")])
    state = tmp_path / "state"
    predict_nightly(
        records.filter(~pl.col("unique_id").is_in(arriving.implode())), model, threshold, state
    )
    run = predict_nightly(records, model, threshold, state)
    assert run.mode == "incremental" and run.changed == arriving.n_unique()
    scored = run.scored
    assert scored.filter(pl.col("unique_id_l") == pl.col("unique_id_r")).height == 0
    _compare(predictions_frame(scored), predictions_frame(full))
    pairs = predictions_frame(scored).select("contact_id_l", "contact_id_r")
    assert pairs.height == pairs.unique().height


def test_state_pairs_hold_no_record_fields_and_an_older_state_means_a_full_night(
    nights, full_tonight, tmp_path: Path
) -> None:
    """The store keeps Splink's scores, not its copies of the record fields (the output gets
    them back from tonight's records); a state from before that change is not read."""
    settings, night1_state = nights
    records, model = _tonight(settings)
    state = tmp_path / "state"
    shutil.copytree(night1_state, state)
    saved = json.loads((state / STATE_FILE).read_text())
    pairs = pl.read_parquet(state / f"pairs-{saved['token']}.parquet")
    assert "email_l" in saved["columns"] and "email_l" in saved["record_columns"]
    assert "email_l" not in pairs.columns and "gamma_email" in pairs.columns
    assert "full_name_l" in pairs.columns  # what term frequencies are looked up by
    run = predict_nightly(records, model, settings.proposal_threshold, state)
    full = full_tonight
    assert run.mode == "incremental"
    assert run.scored.columns == full.columns
    # The record fields fetched back are Splink's own (a changed contact's pairs keep it on the
    # left; a full predict orders each pair by id).
    fields = ["unique_id_l", "unique_id_r", *saved["record_columns"]]
    assert _by_id(run.scored.select(fields)).equals(_by_id(full.select(fields)))
    del saved["columns"]
    (state / STATE_FILE).write_text(json.dumps(saved))
    again = predict_nightly(records, model, settings.proposal_threshold, state)
    assert again.mode == "full" and again.reason == "no saved state"


def test_full_predict_when_settings_change_or_tf_budget_is_spent(nights, tmp_path: Path) -> None:
    settings, _ = nights
    records, model = _tonight(settings)
    state = tmp_path / "state"
    predict_nightly(records, model, 0.8, state)
    assert predict_nightly(records, model, 0.8, state).mode == "incremental"
    # A new threshold (or a retrained model) rescores everything.
    changed_threshold = predict_nightly(records, model, 0.9, state)
    assert changed_threshold.mode == "full" and "threshold" in changed_threshold.reason
    # With no floor below the threshold, any tf rise (contacts leaving) forces a full predict.
    tight = IncrementalConfig(floor_bits=0.0)
    predict_nightly(records, model, 0.9, state, config=tight)
    fewer = records.filter(pl.int_range(pl.len()) % 5 != 0)
    run = predict_nightly(fewer, model, 0.9, state, config=tight)
    assert run.mode == "full" and "term frequencies" in run.reason
    full, _ = predict(fewer, model, 0.9)
    _compare(predictions_frame(run.scored), predictions_frame(full))


def test_splink_reports_are_published_and_work_offline(nights) -> None:
    settings, _ = nights
    folder = settings.output / "matching"
    names = {p.name for p in folder.iterdir()}
    assert {
        "index.html",
        "comparison_viewer.html",
        "cluster_studio.html",
        "match_weights.html",
        "m_u_parameters.html",
    } <= names
    pending = query(
        settings.layout.db_path,
        "SELECT contact_id_l FROM merge_proposals WHERE status = 'pending' LIMIT 1",
    ).item()
    viewer = (folder / "comparison_viewer.html").read_text()
    assert pending in viewer, "the viewer shows the published proposals"
    for name in names:
        page = (folder / name).read_text()
        # Scripts are inlined from Splink's package: nothing is fetched from a CDN.
        # (The inlined Observable stdlib names a CDN as a default it never loads here.)
        assert not re.search(r"<script[^>]+src=[\"']https?:", page), name
        assert not re.search(r"<link[^>]+href=[\"']https?:", page), name
    assert not list(folder.parent.glob(".matching*")), "no half-built folder left behind"


def test_reports_sample_the_proposals_and_survive_a_night_without_any(
    nights, full_tonight, tmp_path: Path
) -> None:
    settings, _ = nights
    records, model = _tonight(settings)
    scored = full_tonight
    assert scored.height > 3
    sampled = write_reports(records, model.settings, scored, tmp_path / "a", 0.8, max_pairs=3)
    assert (sampled.pairs_total, sampled.pairs_shown) == (scored.height, 3)
    assert "3 of" in (tmp_path / "a" / "index.html").read_text()
    empty = write_reports(records, model.settings, pl.DataFrame(), tmp_path / "b", 0.8)
    assert set(empty.files) == {"match_weights.html", "m_u_parameters.html", "index.html"}
    assert {p.name for p in (tmp_path / "b").iterdir()} == set(empty.files)


def test_only_records_sharing_a_blocking_key_with_a_changed_one_are_reached() -> None:
    columns = ["first_name", "first_name_canonical", "surname", "phone_last7", "email_user"]
    columns += ["company"]

    def record(first, surname, last7=None, local=None, company=None) -> dict:
        return dict(zip(columns, [first, first, surname, last7, local, company], strict=True))

    changed = pl.DataFrame([record("ann", "lee", "5550134", "ann.lee", "acme")])
    others = pl.DataFrame(
        [
            record("ann", "lee"),  # same name
            record("lee", "ann"),  # swapped names
            record("bo", "ng", last7="5550134"),  # same last 7 digits
            record("cy", "ma", local="ann.lee"),  # same email local part
            record("ann", "ray", company="acme"),  # first name at the same company
            record("ann", "ray"),  # a first name alone is no rule
            record(None, None),  # nothing to join on
        ],
        schema={c: pl.String for c in columns},
    )
    assert reachable_from(changed, others).to_list() == [True] * 5 + [False] * 2


def test_a_refitted_prior_is_kept_and_the_next_night_stays_incremental(
    nights, tmp_path: Path
) -> None:
    """A night that trains refits the prior (dedup.matching.prior_fit): every pair moves by the
    same bits, the model takes the prior, and the next night, incremental from that state,
    equals a full predict with the refitted model."""
    settings, _ = nights
    records, model = _tonight(settings)
    threshold = settings.proposal_threshold
    model.settings["probability_two_random_records_match"] /= 8  # a prior far too small
    low = model.settings["probability_two_random_records_match"]
    before, _ = predict(records, model, 0.01)
    state = tmp_path / "state"
    first = predict_nightly(records, model, threshold, state, fit_prior=True)
    assert first.mode == "full" and first.prior["estimated"] == low
    assert model.settings["probability_two_random_records_match"] == first.prior["fitted"] > low
    assert first.headroom_bits == pytest.approx(
        IncrementalConfig().floor_bits - first.prior["bits"]
    )
    after, _ = predict(records, model, 0.01)
    moved = before.join(after, on=["unique_id_l", "unique_id_r"], suffix="_after").select(
        pl.col("match_weight_after") - pl.col("match_weight")
    )
    assert moved.to_series().min() == pytest.approx(first.prior["bits"], abs=1e-9)
    assert moved.to_series().max() == pytest.approx(first.prior["bits"], abs=1e-9)
    night2 = records.filter(pl.int_range(pl.len()) % 9 != 0)
    second = predict_nightly(night2, model, threshold, state)
    assert second.mode == "incremental", second.reason
    full, _ = predict(night2, model, threshold)
    _compare(predictions_frame(second.scored), predictions_frame(full))
