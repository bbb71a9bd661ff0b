"""`exp copy` and `exp merge`: lossless, idempotent, converging; doctor --fix after a git merge."""

from __future__ import annotations

import json
import shutil
from array import array

from expledger.models import Status
from expledger.store import open_store
from expledger.transfer import merge

from .conftest import needs_postgres, run_exp


def _fill(store):
    one = store.add(name="語音 baseline", task="asr", model="whisper", params={"lr": 1e-3, "opt": {"b": [1, 2]}},
                    tags=["baseline"], command="python train.py", machine="lab", priority=2)
    store.result(one.id, status=Status.SUCCESS, metrics={"wer": 0.12, "loss": float("nan")}, summary="ok")
    store.result(one.id, status=Status.FAILED, reason="eval bug", force=True)
    two = store.add(name="queued", task="asr")
    store.append_steps(two, {"loss": (array("q", [0, 1, 2]), array("d", [3.0, 2.0, 1.5]))})
    store.add(name="running", status=Status.RUNNING, runner={"host": "lab", "pid": 1})
    return store


def _state(store) -> list[dict]:
    return [exp.to_dict() for exp in store.search(limit=None, sort="id")]


@needs_postgres
def test_copy_jsonl_to_postgres_and_back_is_lossless_and_idempotent(tmp_path, postgres_url):
    first = str(tmp_path / "a.jsonl")
    back = str(tmp_path / "b.jsonl")
    with open_store(first) as source:
        _fill(source)
        original = _state(source)
    assert run_exp("copy", "--from", first, "--to", postgres_url, cwd=tmp_path).code == 0
    again = json.loads(run_exp("copy", "--from", first, "--to", postgres_url, "--json", cwd=tmp_path).out)
    assert again["report"]["added"] == again["report"]["updated"] == 0  # nothing twice
    assert run_exp("copy", "--from", postgres_url, "--to", back, cwd=tmp_path).code == 0
    with open_store(postgres_url) as middle, open_store(back) as final:
        assert _state(middle) == original
        assert _state(final) == original  # field by field, history, NaN and Chinese included
        steps = final.read_steps(final.get("EXP-002"))
        assert steps == {"loss": ([0, 1, 2], [3.0, 2.0, 1.5])}
        assert final.add(name="next").id == "EXP-004"
    with open_store(postgres_url) as middle:
        assert middle.add(name="next on postgres").id == "EXP-004"


def _ledger(tmp_path, name: str, names: list[str]) -> str:
    path = str(tmp_path / name / "experiments.jsonl")
    with open_store(path) as store:
        for exp_name in names:
            store.add(name=exp_name)
    return path


def test_merging_ledgers_that_both_created_exp_003_keeps_both(tmp_path):
    lab = _ledger(tmp_path, "lab", ["lab 1", "lab 2", "lab 3"])
    laptop = _ledger(tmp_path, "laptop", ["laptop 1", "laptop 2", "laptop 3", "laptop 4"])
    lab_copy, laptop_copy = str(tmp_path / "lab2.jsonl"), str(tmp_path / "laptop2.jsonl")
    shutil.copy(lab, lab_copy)
    shutil.copy(laptop, laptop_copy)
    with open_store(lab) as a, open_store(laptop) as b:
        report = merge(b, a)
        assert report["added"] == 4 and len(report["renumbered"]) == 3
        names = {e.name: e for e in a.search(limit=None)}
        assert len(names) == 7
        assert a.get("EXP-003").name == "lab 3"  # the older one keeps the ID
        moved = names["laptop 3"]
        assert moved.aliases == ["EXP-003"] and moved.id not in ("EXP-003",)
        assert [e.name for e in a.search(where="aliases has 'EXP-003'")] == ["laptop 3"]
        assert names["laptop 4"].id == "EXP-004"  # free on both sides: kept
        assert merge(b, a) == {"added": 0, "updated": 0, "renumbered": [], "unchanged": 4, "step_series": 0,
                               "refused": [], "conflicts": []}
    # the other way round gives the same experiments, each ledger keeping the IDs it had
    with open_store(laptop_copy) as b2, open_store(lab_copy) as a2:
        merge(a2, b2)
        other_way = {e.uuid: e for e in b2.search(limit=None)}
    with open_store(lab) as a:
        this_way = {e.uuid: e for e in a.search(limit=None)}
    assert {u: e.name for u, e in this_way.items()} == {u: e.name for u, e in other_way.items()}
    assert {e.name: e.id for e in other_way.values() if e.name.startswith("laptop")} == {
        "laptop 1": "EXP-001", "laptop 2": "EXP-002", "laptop 3": "EXP-003", "laptop 4": "EXP-004"}
    with open_store(lab) as a, open_store(laptop) as b:  # IDs stay put across later merges
        a.add(name="lab 4, after the merge")
        before = {e.uuid: e.id for e in a.search(limit=None)}
        assert merge(b, a)["renumbered"] == []
        assert {e.uuid: e.id for e in a.search(limit=None)} == before


def test_show_points_to_the_experiment_that_lost_its_id(tmp_path, exp):
    lab = _ledger(tmp_path, "lab", ["lab 1"])
    laptop = _ledger(tmp_path, "laptop", ["laptop 1"])
    assert exp("merge", laptop, "--store", lab).code == 0
    shown = exp("show", "EXP-001", "--store", lab)
    assert "lab 1" in shown.out and "EXP-001 was also the ID of EXP-002 (laptop 1)" in shown.err
    assert json.loads(exp("show", "1", "--json", "--store", lab).out)["also_was"] == ["EXP-002"]


def test_doctor_fix_renumbers_ids_clashing_after_a_git_union_merge(tmp_path, exp):
    lab = _ledger(tmp_path, "lab", ["lab 1", "lab 2"])
    laptop = _ledger(tmp_path, "laptop", ["laptop 1"])
    with open(lab, "a", encoding="utf-8") as out, open(laptop, encoding="utf-8") as extra:
        out.write(extra.read())  # what `merge=union` in .gitattributes does
    report = exp("doctor", "--store", lab)
    assert report.code == 1 and "EXP-001 names 2 different experiments" in report.out
    fixed = exp("doctor", "--fix", "--store", lab)
    assert fixed.code == 0, fixed.out
    with open_store(lab) as store:
        names = {e.name: (e.id, e.aliases) for e in store.search(limit=None)}
    assert names == {"lab 1": ("EXP-001", []), "lab 2": ("EXP-002", []), "laptop 1": ("EXP-003", ["EXP-001"])}
    assert exp("doctor", "--store", lab).code == 0
