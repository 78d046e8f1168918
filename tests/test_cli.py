"""The `nas` command, including the README's custom-space example, run as a user would."""

import json
import re
from pathlib import Path

import pytest

from nas.cli import main
from nas.space import load_space

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = [
    "--channels",
    "4",
    "--cells",
    "1",
    "--warmup-steps",
    "5",
    "--train-steps",
    "2",
    "--batch-size",
    "32",
    "--no-progress",
]


def readme_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- custom-space-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its custom-space example"
    return match.group(1)


def test_readme_custom_space_runs_a_search(tmp_path, capsys):
    path = tmp_path / "my_space.py"
    path.write_text(readme_example())
    space = load_space(f"{path}:SPACE")
    assert space.name == "my_space" and space.size == 1 * 2 * 3 * 5**4
    out = tmp_path / "run"
    code = main(["search", "--space", f"{path}:SPACE", "--budget", "4", "--out", str(out), *TINY])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["space"] == "my_space" and results["evaluations"] == 4
    assert (out / "events.jsonl").read_text().count('"event": "eval"') == 4
    assert "Top 4 of 4 architectures" in capsys.readouterr().out


@pytest.mark.parametrize(
    "strategy", [pytest.param("reinforce", marks=pytest.mark.slow), "bayesopt"]
)
def test_learning_strategies_search_builtin_and_custom_spaces(tmp_path, strategy):
    path = tmp_path / "my_space.py"
    path.write_text(readme_example())
    for space in ("nb201", f"{path}:SPACE"):
        out = tmp_path / space.split(":")[-1]
        args = ["search", "--space", space, "--strategy", strategy, "--budget", "6", "--batch", "2"]
        assert main([*args, "--initial", "2", "--out", str(out), *TINY]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["evaluations"] == 6
        assert 0.0 < results["top"][0]["score"] <= 1.0


def test_config_file_sets_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "search.toml"
    config.write_text('strategy = "random"\nbudget = 3\nseed = 7\n')
    out = tmp_path / "run"
    args = ["search", "--config", str(config), "--budget", "2", "--out", str(out), *TINY]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["strategy"], saved["budget"], saved["seed"]) == ("random", 2, 7)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("budgett = 3", "unknown option 'budgett'; valid options: space, strategy"),
        ('budget = "many"', "budget = 'many' should be a int"),
        ('strategy = "annealing"', "invalid strategy 'annealing'; valid values: random, evolution"),
        ("budget = [", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_reported(tmp_path, capsys, toml, message):
    config = tmp_path / "bad.toml"
    config.write_text(toml + "\n")
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_unknown_option_value_lists_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--strategy", "annealing"])
    assert "choose from 'random', 'evolution'" in capsys.readouterr().err


def test_unknown_dataset_and_space(tmp_path, capsys):
    assert main(["search", "--dataset", "cifar100", "--out", str(tmp_path / "a")]) == 2
    assert "digits" in capsys.readouterr().err
    assert main(["search", "--space", "nb202", "--out", str(tmp_path / "b")]) == 2
    assert "unknown space 'nb202'" in capsys.readouterr().err


def test_spaces_lists_sizes(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "nb201" in out and "15,625" in out and "darts" in out and "enas" in out


def test_every_command_has_help(capsys):
    for command in (["--help"], ["search", "--help"], ["spaces", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "--train-steps" in capsys.readouterr().out


def test_a_time_limit_ends_the_search_early_with_its_results(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "--strategy", "random", "--budget", "12", "--out", str(out), *TINY]
    assert main([*args, "--max-minutes", "0.0001"]) == 0  # out of time once warmed up
    events = [json.loads(line) for line in (out / "events.jsonl").open()]
    assert json.loads((out / "results.json").read_text())["evaluations"] == 0
    assert events[-1]["event"] == "stopped" and events[-1]["evaluations"] == 0
    assert main(["resume", str(out), "--max-minutes", "60", "--no-progress"]) == 0  # extended
    events = [json.loads(line) for line in (out / "events.jsonl").open()]
    assert sum(e["event"] == "eval" for e in events) == 12
    assert json.loads((out / "results.json").read_text())["evaluations"] == 12
    assert main([*args, "--max-minutes", "0", "--overwrite"]) == 2
    assert "max_minutes must be positive, got 0.0" in capsys.readouterr().err


def test_evaluator_options_reach_the_search(tmp_path):
    out = tmp_path / "run"
    args = ["search", "--budget", "2", "--out", str(out), "--warmup-sampling", "uniform"]
    assert main([*args, "--score-by", "loss", *TINY]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["warmup_sampling"], saved["score_by"]) == ("uniform", "loss")
    evals = [e for e in map(json.loads, (out / "events.jsonl").open()) if e["event"] == "eval"]
    assert len(evals) == 2 and all(e["score"] < 0 for e in evals)  # negative losses


def test_a_search_splits_its_batches_across_devices(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "--strategy", "random", "--budget", "2", "--out", str(out), *TINY]
    assert main([*args, "--devices", "2", "--batch-size", "16"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["devices"], saved["batch_size"]) == (2, 16)
    assert json.loads((out / "results.json").read_text())["evaluations"] == 2
    assert main([*args, "--devices", "3", "--overwrite"]) == 2
    assert "batch_size 32 does not split into devices=3" in capsys.readouterr().err
