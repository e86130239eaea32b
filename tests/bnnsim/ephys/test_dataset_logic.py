"""The batch logic without NEURON: step-size fallback, resume markers, splits."""

import json

from bnnsim.ephys import dataset, nrn, protocol


def _row(**fields) -> str:
    """A row file as this protocol version's build writes it."""
    return json.dumps({"protocol_version": protocol.PROTOCOL_VERSION, **fields})


def _non_finite_row(job):
    return {"name": job["name"], "status": "simulation", "characterised": False,
            "error": {"type": "NonFiniteVoltage",
                      "message": "c: simulation: voltage is not finite in the 0.0 nA sweep"}}


def test_non_finite_voltage_is_retried_with_exact_gates_then_the_fallback_step(
        tmp_path, monkeypatch):
    calls = []

    def once(job, timeout):
        calls.append((job.get("dt_ms", protocol.DT_MS), job.get("gates")))
        if len(calls) < 3:
            return _non_finite_row(job)
        return {"name": job["name"], "status": "ok", "characterised": True, "npz": None}

    monkeypatch.setattr(dataset, "_run_once", once)
    row = dataset.run_job({"name": "c", "out": str(tmp_path)})
    assert calls == [(protocol.DT_MS, None), (protocol.DT_MS, nrn.GATES_EXPONENTIAL),
                     (protocol.DT_FALLBACK_MS, nrn.GATES_EXPONENTIAL)]
    assert row["status"] == "ok" and len(row["fallbacks"]) == 2
    assert row["fallbacks"][0].startswith(f"dt {protocol.DT_MS} ms, gates as exported: ")
    assert row["fallbacks"][1].startswith(f"dt {protocol.DT_MS} ms, gates exponential: ")
    saved = json.loads((tmp_path / "rows" / "c.json").read_text())
    assert saved["fallbacks"] == row["fallbacks"]


def test_a_finite_first_try_is_not_retried(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(dataset, "_run_once", lambda job, timeout: calls.append(job) or
                        {"name": job["name"], "status": "ok", "characterised": True})
    row = dataset.run_job({"name": "c", "out": str(tmp_path)})
    assert len(calls) == 1 and "fallbacks" not in row


def test_a_cell_another_build_finished_meanwhile_is_read_back(tmp_path, monkeypatch):
    """Two builds into one folder: a job listed as to-do is not rerun once the other
    build has written its row."""
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "c.json").write_text(_row(name="c", status="export",
                                                   characterised=False))
    monkeypatch.setattr(dataset, "_run_once", lambda *a: (_ for _ in ()).throw(
        AssertionError("a finished cell may not run again")))
    row = dataset.run_job({"name": "c", "out": str(tmp_path)})
    assert row["status"] == "export" and row["resumed"]


def test_exact_gate_cell_falls_back_only_to_the_smaller_step():
    job = {"name": "c", "gates": nrn.GATES_EXPONENTIAL}
    assert dataset.fallbacks(job) == [dict(job, dt_ms=protocol.DT_FALLBACK_MS)]
    assert dataset.fallbacks(dict(job, dt_ms=protocol.DT_FALLBACK_MS)) == []


def test_resume_redoes_unmarked_and_untried_cells(tmp_path):
    rows = tmp_path / "rows"
    rows.mkdir()
    (rows / "a.json").write_text(_row(status="export", characterised=False))
    (rows / "g.json").write_text(json.dumps({"status": "export", "characterised": False}))
    (rows / "b.json").write_text('{"status": "ok", "charac')  # killed mid-write
    (rows / "c.json").write_text(_row(status="simulation", characterised=False,
                                      error={"type": "NonFiniteVoltage",
                                             "message": "voltage is not finite"}))
    (rows / "e.json").write_text(_row(status="ok", characterised=True,  # old scheme
                                      npz=str(tmp_path / "x.npz"),
                                      dt_fallback="at dt 0.025 ms: not finite"))
    (tmp_path / "x.npz").write_bytes(b"")
    (rows / "f.json").write_text(_row(status="simulation", characterised=False,
                                      error={"type": "NonFiniteVoltage",
                                             "message": "voltage is not finite"},
                                      fallbacks=["dt 0.025 ms, ...", "..."]))
    (rows / "d.json").write_text(_row(status="ok", characterised=True,
                                      npz=str(tmp_path / "gone.npz")))
    assert dataset.finished(tmp_path, "a")["status"] == "export"
    assert dataset.finished(tmp_path, "b") is None
    assert dataset.finished(tmp_path, "c") is None
    assert dataset.finished(tmp_path, "d") is None
    assert dataset.finished(tmp_path, "e") is None  # tried only the step, not the gates
    assert dataset.finished(tmp_path, "f")["status"] == "simulation"  # every fallback tried
    assert dataset.finished(tmp_path, "g") is None  # an earlier protocol version's row


def test_finished_only_reads_back_and_runs_nothing(tmp_path, monkeypatch):
    """--finished-only: finished rows come back, the rest are 'pending', none is run."""
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "a.json").write_text(_row(name="a", status="export",
                                                   characterised=False))
    monkeypatch.setattr(dataset, "run_job", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("nothing may run")))
    jobs = [{"name": n, "out": str(tmp_path), "file": f"{n}.nml"} for n in ("a", "b")]
    rows = dataset.run_jobs(jobs, 1, "cells", progress=False, finished_only=True)
    assert [r["status"] for r in rows] == ["export", "pending"]
    assert rows[0]["resumed"] and not rows[1]["characterised"]
    assert "not simulated yet" in rows[1]["error"]["message"]


def test_splits_by_source_cell_and_held_out_repository():
    rows = [{"name": f"r{i}", "characterised": True, "etype": "bursting" if i % 3 else "delayed",
             "labels": {"repository": "A" if i < 40 else "B"}} for i in range(50)]
    rows.append({"name": "bad", "characterised": False})
    splits = dataset.assign(rows, "B")
    assert all(splits[f"r{i}"] == "ood" for i in range(40, 50))
    inside = [splits[f"r{i}"] for i in range(40)]
    assert set(inside) == {"train", "val", "test"} and "bad" not in splits
    assert splits == dataset.assign(list(reversed(rows)), "B")  # order does not matter


def test_a_cell_reads_only_inside_its_tree_or_what_the_user_allowed(tmp_path, monkeypatch):
    """The read policy (graphs.policy) holds for `bnnsim cells` jobs, in their process."""
    from bnnsim.ephys import run_cell, variants
    from bnnsim.ephys.errors import ExportFailed
    from graphs.policy import model_tree
    from tests.conftest import nml
    from tests.fixtures import BALL_AND_STICK

    model = tmp_path / "a" / "b" / "c" / "model"
    model.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "syn.nml").write_text(nml('<expOneSynapse id="ampa" gbase="1nS" erev="0mV" '
                                         'tauDecay="2ms"/>'))
    cell = model / "bs.cell.nml"
    cell.write_text(nml(f'<include href="{outside / "syn.nml"}"/>\n' + BALL_AND_STICK))
    job = {"name": "bs", "file": str(cell), "cell_id": "bs", "kind": "cells",
           "temperature_c": 34.0, "out": str(tmp_path / "ds"), "cache": str(tmp_path / "cache")}
    row = run_cell.run(job)
    assert row["status"] == "conversion" and row["error"]["type"] == "ConversionFailed"
    assert "outside the folders this model may read" in row["error"]["message"]

    def stop(job, cache):  # conversion passed: stop before NEURON
        raise ExportFailed(job["name"], "stopped by the test")

    monkeypatch.setattr(run_cell, "simulate", stop)
    row = run_cell.run(dict(job, allow=[str(outside)]))
    assert row["status"] == "export" and "stopped by the test" in row["error"]["message"]
    # a variant's includes point back at its source: it reads the source's tree
    assert variants.variant_allow(cell, [outside]) == [str(model_tree(cell)), str(outside)]
