"""`ragtune finetune` and `ragtune merge` end to end on the tiny model."""

from __future__ import annotations

import json

import pytest

from ragtune.cli import main


def _qa_file(path, n=8):
    lines = [json.dumps({"question": f"Which badge opens door {i}?", "answer": f"B-{i}", "doc_id": f"doc{i % 4}"})
             for i in range(n)]
    path.write_text("\n".join(lines + ["{broken"]) + "\n")
    return path


def _run(argv, capsys):
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_finetune_cli_writes_adapter_export_and_heldout(train_lm_dir, tmp_path, capsys):
    qa = _qa_file(tmp_path / "qa.jsonl")
    out = tmp_path / "adapter"
    code, stdout, stderr = _run(["finetune", "--train", str(qa), "--out", str(out), "--base-model", str(train_lm_dir),
                                 "--epochs", "1", "--batch-size", "4", "--lora-r", "2", "--holdout", "0.25",
                                 "--export", str(tmp_path / "built.jsonl"), "--merge", str(tmp_path / "merged"),
                                 "--min-examples", "4", "--json"], capsys)
    assert code == 1, stderr  # trained, but a line was skipped: exit 1 as for ingest (issue #12 item 8)
    assert stderr.count("qa.jsonl:9: invalid JSON") == 1 and "1 malformed line(s) skipped" in stderr
    result = json.loads(stdout)
    assert result["examples"] == 6 and result["heldout"] == 2 and result["steps"] == 2
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    built = [json.loads(line) for line in (tmp_path / "built.jsonl").read_text().splitlines()]
    assert len({h["doc_id"] for h in heldout}) == 1  # one whole document held out
    assert not any(h["question"] in b["messages"][1]["content"] for h in heldout for b in built)
    assert (out / "ragtune_adapter.json").is_file() and (tmp_path / "merged" / "config.json").is_file()
    code, _, stderr = _run(["merge", str(out), "--out", str(tmp_path / "merged")], capsys)
    assert code == 2 and "already exists" in stderr


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--mode", "raft"], 2, "--mode raft needs an index"),
        (["--mode", "raft", "--index", "{tmp}/no-index"], 3, "no-index"),
        (["--mode", "dpo"], 2, "unknown training mode 'dpo'"),
        (["--epochs", "0"], 2, "bad fine-tuning option"),
    ],
)
def test_finetune_cli_errors(train_lm_dir, tmp_path, capsys, extra, code, message):
    qa = _qa_file(tmp_path / "qa.jsonl")
    argv = ["finetune", "--train", str(qa), "--out", str(tmp_path / "a"), "--base-model", str(train_lm_dir)]
    got, _, stderr = _run(argv + [x.format(tmp=tmp_path) for x in extra], capsys)
    assert got == code and message in stderr
    assert not (tmp_path / "a").exists()


def test_finetune_cli_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    code, _, stderr = _run(["finetune", "--train", str(bad), "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "bad.jsonl:1: missing field 'answer'" in stderr


def test_finetune_cli_export_only(tmp_path, capsys):
    qa = _qa_file(tmp_path / "qa.jsonl", n=3)
    code, stdout, _ = _run(["finetune", "--train", str(qa), "--out", str(tmp_path / "a"), "--export",
                            str(tmp_path / "sft.jsonl"), "--export-only"], capsys)
    assert code == 1 and "wrote 3 sft training examples" in stdout  # 1: the broken line was skipped
    first = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    assert first["messages"][-1] == {"role": "assistant", "content": "B-0"}
    assert not (tmp_path / "a").exists()


def test_finetune_cli_mostly_malformed_file_refuses_to_train(tmp_path, capsys):
    """4 of 5 lines malformed: each reported once, and 1 example is too little to train on (issue #12 item 8)."""
    bad = tmp_path / "mostly-bad.jsonl"
    bad.write_text("\n".join(['{"question": "Who?", "answer": "Marta"}', "{broken", '{"question": "q"}',
                              "[1, 2]", '{"answer": "a"}']) + "\n")
    code, _, stderr = _run(["finetune", "--train", str(bad), "--out", str(tmp_path / "a"), "--base-model",
                            str(tmp_path / "no-model")], capsys)
    assert code == 2
    for number in (2, 3, 4, 5):
        assert stderr.count(f"mostly-bad.jsonl:{number}:") == 1, stderr
    assert "only 1 usable training example(s)" in stderr and "fewer than --min-examples 8" in stderr
    assert not (tmp_path / "a").exists()


def test_finetune_cli_min_examples_counts_valid_files_too(tmp_path, capsys):
    lines = [json.dumps({"question": f"Q{i}?", "answer": f"A{i}"}) for i in range(3)]
    (tmp_path / "qa.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["finetune", "--train", str(tmp_path / "qa.jsonl"), "--out", str(tmp_path / "a"), "--base-model",
            str(tmp_path / "no-model")]
    code, _, stderr = _run(argv + ["--min-examples", "4"], capsys)
    assert code == 2 and "only 3 usable training example(s)" in stderr and "0 malformed" in stderr
    code, _, stderr = _run(argv + ["--min-examples", "3"], capsys)  # allowed now: fails later, on the model
    assert code != 0 and "min-examples" not in stderr


def test_finetune_cli_prints_and_records_its_train_minutes_plan(train_lm_dir, tmp_path, capsys, monkeypatch):
    from ragtune.train import budget

    monkeypatch.setattr(budget, "probe_speed", lambda train, config, seed=0: budget.Speed(100.0, 50.0, 0.0))
    argv = ["finetune", "--train", str(_qa_file(tmp_path / "qa.jsonl", n=20)), "--out", str(tmp_path / "a"),
            "--base-model", str(train_lm_dir), "--epochs", "3", "--batch-size", "4", "--lora-r", "2",
            "--train-minutes", "0.1", "--json"]  # 6 s at 0.5 s an example: 12 of the 20 examples, once
    code, stdout, stderr = _run(argv, capsys)
    assert code == 1, stderr  # the file's broken last line
    assert "sft training plan for 0.1 min: 12 of 20 examples x 1 epoch(s)" in stderr
    result = json.loads(stdout)
    assert result["examples"] == 12 and result["epochs"] == 1 and result["steps"] == 3
    assert result["plan"]["examples"] == 12 and result["plan"]["available"] == 20


def test_finetune_cli_refuses_a_train_minutes_budget_with_nproc(train_lm_dir, tmp_path, capsys):
    argv = ["finetune", "--train", str(_qa_file(tmp_path / "qa.jsonl")), "--out", str(tmp_path / "a"),
            "--base-model", str(train_lm_dir), "--train-minutes", "1", "--nproc", "2"]
    code, _, stderr = _run(argv, capsys)
    assert code == 2 and "--train-minutes" in stderr and not (tmp_path / "a").exists()


@pytest.mark.parametrize(("extra", "dropout"), [([], 0.0), (["--lora-dropout", "0.1"], 0.1)])
def test_finetune_cli_trains_without_lora_dropout_unless_asked(train_lm_dir, tmp_path, capsys, extra, dropout):
    out = tmp_path / "adapter"
    code, _, stderr = _run(["finetune", "--train", str(_qa_file(tmp_path / "qa.jsonl")), "--out", str(out),
                            "--base-model", str(train_lm_dir), "--epochs", "1", "--lora-r", "2", *extra], capsys)
    assert code == 1, stderr  # the broken line
    assert json.loads((out / "ragtune_adapter.json").read_text())["lora"]["dropout"] == dropout


def test_finetune_cli_checkpoint_layers_is_recorded_and_bounded(train_lm_dir, tmp_path, capsys):
    """--checkpoint-layers (issue 15): the share of layers recomputed in the backward pass, in the manifest;
    outside 0..1 a usage error before any work."""
    out = tmp_path / "adapter"
    argv = ["finetune", "--train", str(_qa_file(tmp_path / "qa.jsonl")), "--out", str(out), "--base-model",
            str(train_lm_dir), "--epochs", "1", "--lora-r", "2"]
    code, _, stderr = _run([*argv, "--checkpoint-layers", "0.5"], capsys)
    assert code == 1, stderr  # the broken line
    assert json.loads((out / "ragtune_adapter.json").read_text())["training"]["checkpoint_layers"] == 0.5
    code, _, stderr = _run([*argv[:4], str(tmp_path / "b"), *argv[5:], "--checkpoint-layers", "1.5"], capsys)
    assert code == 2 and "--checkpoint-layers" in stderr and not (tmp_path / "b").exists()
