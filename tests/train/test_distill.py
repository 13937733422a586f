"""Distillation: the loss's properties, and `train --distill-from` end to end incl. a bad teacher."""
from __future__ import annotations

import pytest
import torch

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.nn.scorers import DistMultScorer
from mmgraph.train.distill import Teacher, distillation_loss
from mmgraph.train.run import load_run

from tiny_media_graph import write_tiny_graph


def test_zero_when_student_agrees_with_teacher():
    teacher = torch.randn(5, 7)
    for temperature in (0.5, 1.0, 4.0):
        assert distillation_loss(teacher.clone(), teacher, temperature=temperature).abs() < 1e-6
        # a constant shift per row leaves the distribution as it is
        assert distillation_loss(teacher + 3.0, teacher, temperature=temperature).abs() < 1e-5
    assert distillation_loss(torch.randn(5, 7), teacher) > 0


def test_gradient_moves_the_student_towards_the_teacher():
    teacher = torch.tensor([[4.0, 0.0, 0.0]])
    student = torch.zeros(1, 3, requires_grad=True)
    distillation_loss(student, teacher, temperature=2.0).backward()
    grad = student.grad[0]
    assert grad[0] < 0 and grad[1] > 0 and grad[2] > 0  # descent raises the teacher's favourite
    before = distillation_loss(student.detach(), teacher, temperature=2.0)
    after = distillation_loss(student.detach() - 0.5 * grad, teacher, temperature=2.0)
    assert after < before


def test_masked_candidates_carry_no_probability():
    teacher = torch.tensor([[1.0, float("-inf"), 0.0]])
    student = torch.tensor([[1.0, 50.0, 0.0]])  # whatever it says about the masked candidate
    assert distillation_loss(student, teacher).abs() < 1e-6
    with pytest.raises(ValueError, match="shapes"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))


class _Scored(torch.nn.Module):
    """The part of a LinkPredictor that Teacher uses: one relation vector and a DistMult scorer."""

    def __init__(self, dim: int):
        super().__init__()
        self.scorer = DistMultScorer()
        self.relation_vectors = torch.nn.Parameter(torch.ones(1, dim))

    def relation_vectors_for(self, rels, which):
        return self.relation_vectors[which.new_zeros(which.shape)]


REL = [("u", "likes", "i")]


def _assert_mix_adds_the_teacher(teacher: Teacher) -> None:
    """mix must add weight * distillation loss to the label loss, with its gradient on the student."""
    torch.manual_seed(1)
    z = {"u": torch.randn(4, 6, requires_grad=True), "i": torch.randn(5, 6, requires_grad=True)}
    which, pair = torch.zeros(3, dtype=torch.long), torch.tensor([[0, 1, 2], [0, 3, 4]])
    label = torch.tensor(0.8)  # constant: any gradient on z comes from the teacher's term
    student = _Scored(6)
    mixed = teacher.mix(label, student, REL, z, which, pair)
    kd = teacher.loss(student, z, REL, which, pair)
    assert kd > 0.01  # a random student disagrees with the teacher
    assert torch.allclose(mixed, (1 - teacher.weight) * label + teacher.weight * kd)
    mixed.backward()
    assert z["u"].grad is not None and z["u"].grad.abs().sum() > 0
    # one descent step on the mixed loss brings the student closer to the teacher
    with torch.no_grad():
        stepped = {t: v - 0.5 * v.grad for t, v in z.items()}
    assert teacher.loss(student, stepped, REL, which, pair) < kd


def test_mix_weighs_label_loss_against_the_teacher(monkeypatch):
    torch.manual_seed(0)
    teacher = Teacher(model=_Scored(6), z={"u": torch.randn(4, 6), "i": torch.randn(5, 6)},
                      weight=0.7, temperature=2.0)
    _assert_mix_adds_the_teacher(teacher)
    # the check above is not vacuous: a mix that ignores the teacher fails it
    monkeypatch.setattr(Teacher, "mix", lambda self, label_loss, *args: label_loss)
    with pytest.raises(AssertionError):
        _assert_mix_adds_the_teacher(teacher)


def _graph(root, items=40):
    root.mkdir()
    graph, report = mmgraph.build_graph(write_tiny_graph(root, items=items), return_report=True)
    return write_graph(graph, report, root / "graph")


def test_distill_from_cli_end_to_end(tmp_path, capsys):
    graph_dir = _graph(tmp_path / "a")
    teacher_cfg, student_cfg = tmp_path / "teacher.yaml", tmp_path / "student.yaml"
    teacher_cfg.write_text("epochs: 30\neval_every: 5\nlr: 0.02\nmodel: {channels: 16, num_layers: 1}\n")
    student_cfg.write_text("epochs: 30\neval_every: 5\nlr: 0.02\ndistill_weight: 0.7\ndistill_temperature: 2.0\n"
                           "model: {channels: 8, num_layers: 0}\n")
    teacher = tmp_path / "teacher"
    assert main(["train", str(graph_dir), "-o", str(teacher), "--config", str(teacher_cfg), "--quiet"]) == 0
    student = tmp_path / "student"
    assert main(["train", str(graph_dir), "-o", str(student), "--config", str(student_cfg), "--quiet",
                 "--distill-from", str(teacher)]) == 0
    run = load_run(student)
    assert run.extra["distilled_from"] == str(teacher.resolve())
    assert run.model.config.num_layers == 0 and run.model.config.channels == 8
    capsys.readouterr()

    # a teacher trained on another graph, or no run at all, is bad input (exit 2) naming the flag
    other_graph = _graph(tmp_path / "b", items=32)
    code = main(["train", str(other_graph), "-o", str(tmp_path / "x"), "--config", str(student_cfg), "--quiet",
                 "--distill-from", str(teacher)])
    err = capsys.readouterr().err
    assert code == 2 and "--distill-from" in err and "another graph" in err and not (tmp_path / "x").exists()
    code = main(["train", str(graph_dir), "-o", str(tmp_path / "y"), "--config", str(student_cfg),
                 "--quiet", "--distill-from", str(tmp_path / "no_such_run")])
    assert code == 2 and "not a run folder" in capsys.readouterr().err


def test_teacher_with_other_test_edges_is_refused(tmp_path):
    from mmgraph.errors import InputError
    from mmgraph.train.distill import check_same_graph
    from mmgraph.train.prepare import prepare_graph, splits_to_plain

    graph = mmgraph.load_graph(_graph(tmp_path / "a"))
    prepared = prepare_graph(graph, seed=0)
    extra = {"ids": graph.mmgraph["ids"], "relations": [list(et) for et in prepared.relations],
             "splits": splits_to_plain(prepared.splits)}
    check_same_graph(extra, prepared, "teacher")  # the same graph and split: fine
    et = prepared.relations[0]
    extra["splits"]["|".join(et)]["test"] = prepared.splits[et].test[1:]
    with pytest.raises(InputError, match="test edges"):
        check_same_graph(extra, prepared, "teacher")
