"""User mistakes: one actionable line naming the mistake and what is accepted, exit code 2."""

from __future__ import annotations

import pytest
from helpers import optbench, optbench_in_process

CASES = [
    (["optimizer=nope"], ["optimizer=nope", "available: ", "adamw", "galore", "sgd", "swan"]),
    (["task=nope"], ["task=nope", "available: ", "llama350m", "logreg", "matrix_sensing"]),
    (["data=nope"], ["data=nope", "available: c4, files, synthetic"]),
    (["train.steps=abc"], ["train.steps", "'abc'", "Integer"]),
    (["task.data=svmlight", "task.path=/no/such/file.svm"], ["/no/such/file.svm", "no such file"]),
    (["task.data=svmlight"], ["task.path=FILE"]),
    (["task=matrix_sensing", "task.k=1", "task.r=2"], ["task.k=1", "task.r=2"]),
    (["optimizer.lr=-0.1"], ["Invalid learning rate: -0.1"]),
    (["optimizer.lr=fast"], ["optimizer.lr='fast'", "valid number"]),
    (["+optimizer.betas=[0.9,0.99]"], ["optimizer.betas is not an option of SGD", "accepted: lr"]),
    (["task.data=csv"], ["task.data='csv'", "'synthetic', 'breast_cancer' or 'svmlight'"]),
    (["precision=fp16"], ["fp16", "fp32, fp64, bf16"]),
    (["device=tpu"], ["device='tpu'", "accepted: auto, cpu, cuda"]),
    (["train.log_every=0"], ["train.log_every=0", "positive"]),
    (["train.stepz=5"], ["train.stepz", "+train.stepz=5"]),
    (["optimizer=sgd,adam"], ["is a sweep", "-m"]),
    (["schedule=cosine", "schedule.floor=2"], ["schedule.floor=2", "[0, 1]"]),
]


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_user_mistake_is_one_line_and_exit_2(tmp_path, args, expected):
    result = optbench_in_process("run", *args, "logger=none", f"hydra.run.dir={tmp_path / 'D'}")

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in expected:
        assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "D").exists()  # nothing was started


def test_unparsable_svmlight_file_fails_in_the_run(tmp_path):
    bad = tmp_path / "bad.svm"
    bad.write_text("this is not libsvm\n")
    result = optbench("run", "task.data=svmlight", f"task.path={bad}", "logger=none",
                      f"hydra.run.dir={tmp_path / 'D'}", check=False)
    assert result.returncode == 2
    assert "is not a LIBSVM-format file" in result.stderr and "Traceback" not in result.stderr


def test_runs_of_a_missing_directory(tmp_path):
    result = optbench_in_process("runs", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_list_of_an_unknown_group():
    result = optbench_in_process("list", "widgets")
    assert result.returncode == 2 and "accepted: optimizers, tasks" in result.stderr


def test_missing_cifar_archive_says_where_to_put_it(tmp_path):
    result = optbench("run", "task=cifar10", f"task.root={tmp_path / 'nowhere'}", "logger=none",
                      f"hydra.run.dir={tmp_path / 'D'}", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{tmp_path / 'nowhere'}/cifar-10-batches-py" in line and "torchvision" in line
