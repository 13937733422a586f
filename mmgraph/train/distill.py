r"""Knowledge distillation: a student learns from a trained teacher's 1-N score distributions.

For each supervised edge (h, r, t) the teacher scores every candidate tail (h, r, ?) and every
candidate head (?, r, t); the student is pulled towards those distributions,

.. math::
    \mathcal{L} = (1 - w)\,\mathcal{L}_{\text{labels}} + w\,T^2\,\tfrac12\big(
        \mathrm{KL}(p^{T}_{\text{tail}} \,\|\, q^{T}_{\text{tail}}) + \mathrm{KL}(p^{T}_{\text{head}} \,\|\, q^{T}_{\text{head}})\big),
    \quad p^{T} = \mathrm{softmax}(s_{\text{teacher}} / T),\ q^{T} = \mathrm{softmax}(s_{\text{student}} / T)

(Hinton et al. 2015; the :math:`T^2` keeps the gradient scale independent of the temperature).
The teacher's embeddings are those its run saved (`embeddings.pt`, messages over its training
edges), so it costs one scoring product per batch. A typical student is feature-only
(`num_layers: 0`): it links items that have no edges yet as well as it can learn from a
teacher that saw the graph.

In mini-batch training the student has embeddings of the sampled subgraph only, so the two
distributions are taken over the sampled candidates of each edge (the true end and its
`num_negatives` corrupted ends, tails and heads) instead of every node (`Teacher.mix_sampled`).

Distillation is a wrapper around another objective (:class:`Distillation`); `fit(...,
teacher=teacher)` wraps the supervised one.

Example::

    teacher = Teacher.from_run(load_run("teacher_run"), prepared, weight=0.5, temperature=2.0)
    state = fit(student, prepared, config, device=device, teacher=teacher, evaluate=evaluate_split)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mmgraph.data.graph import edge_key
from mmgraph.errors import InputError
from mmgraph.train.objective_base import Objective
from mmgraph.utils import gather_rows

EdgeType = tuple[str, str, str]

__all__ = ["distillation_loss", "Teacher", "Distillation", "check_same_graph"]


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Mean over rows of :math:`T^2\\,\\mathrm{KL}(\\mathrm{softmax}(t/T) \\| \\mathrm{softmax}(s/T))`.

    Shapes: `student_logits`, `teacher_logits` `[B, C]` -> scalar. Candidates scored `-inf` by
    the teacher (masked) carry no probability and are left out on both sides. Zero exactly when
    the two rows agree up to a constant shift.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"distillation_loss: shapes differ {tuple(student_logits.shape)} vs "
                         f"{tuple(teacher_logits.shape)}")
    t = teacher_logits.detach().float() / temperature
    s = student_logits.float() / temperature
    masked = torch.isinf(t) & (t < 0)
    p = t.softmax(dim=-1)
    log_q = s.masked_fill(masked, float("-inf")).log_softmax(dim=-1)
    log_p = t.log_softmax(dim=-1)
    kl = (p * (log_p - log_q)).masked_fill(masked, 0.0).sum(dim=-1)
    return temperature ** 2 * kl.mean()


def check_same_graph(teacher_extra: dict, prepared, teacher_dir) -> None:
    """InputError unless the teacher was trained on this graph: same node ids, relations, test edges."""
    ids = (getattr(prepared.graph, "mmgraph", None) or {}).get("ids", {})
    if teacher_extra.get("ids") != ids:
        types = sorted(set(ids) ^ set(teacher_extra.get("ids", {}))) or [
            t for t in ids if ids[t] != teacher_extra["ids"].get(t)]
        raise InputError(f"--distill-from {teacher_dir}: the teacher was trained on another graph "
                         f"(node ids differ for type(s) {types}); train it on this graph first")
    taught = {tuple(r) for r in teacher_extra.get("relations", [])}
    missing = [edge_key(et) for et in prepared.relations if et not in taught]
    if missing:
        raise InputError(f"--distill-from {teacher_dir}: the teacher does not score {missing} "
                         f"(it scores {sorted(edge_key(et) for et in taught)})")
    for et in prepared.relations:
        test = teacher_extra["splits"][edge_key(et)]["test"]
        if not torch.equal(test.sort().values, prepared.splits[et].test.sort().values):
            raise InputError(f"--distill-from {teacher_dir}: the teacher's test edges of {edge_key(et)} "
                             f"differ from this run's (another split or seed); its scores would leak them")


@dataclass
class Teacher:
    """A trained run's scores as soft targets; `mix` adds them to a batch's label loss."""

    model: torch.nn.Module
    z: dict[str, Tensor]
    weight: float
    temperature: float

    @classmethod
    def from_run(cls, run, prepared, *, weight: float, temperature: float,
                 device: torch.device | None = None) -> "Teacher":
        check_same_graph(run.extra, prepared, run.run_dir)
        device = device or torch.device("cpu")
        model = run.model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return cls(model=model, z={t: v.to(device) for t, v in run.embeddings().items()},
                   weight=weight, temperature=temperature)

    def logits(self, model, z: dict[str, Tensor], rels: list[EdgeType], which: Tensor, pair: Tensor
               ) -> tuple[Tensor, Tensor]:
        """Tail `[B, N_dst]` and head `[B, N_src]` logits of `model` over every candidate."""
        src, dst = rels[0][0], rels[0][2]
        r = model.relation_vectors_for(rels, which)
        return (model.scorer.score_tails(gather_rows(z[src], pair[0]), r, z[dst]),
                model.scorer.score_heads(z[src], r, gather_rows(z[dst], pair[1])))

    def loss(self, model, z: dict[str, Tensor], rels: list[EdgeType], which: Tensor, pair: Tensor) -> Tensor:
        with torch.no_grad():
            t_tail, t_head = self.logits(self.model, self.z, rels, which, pair)
        s_tail, s_head = self.logits(model, z, rels, which, pair)
        return 0.5 * (distillation_loss(s_tail, t_tail, temperature=self.temperature)
                      + distillation_loss(s_head, t_head, temperature=self.temperature))

    def mix(self, label_loss: Tensor, model, rels: list[EdgeType], z: dict[str, Tensor], which: Tensor,
            pair: Tensor) -> Tensor:
        """`(1 - weight) * label_loss + weight * distillation loss` of one batch of one relation group."""
        return (1 - self.weight) * label_loss + self.weight * self.loss(model, z, rels, which, pair)

    def mix_sampled(self, label_loss: Tensor, et: EdgeType, *, tail: tuple[Tensor, Tensor, Tensor],
                    head: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """`mix` over sampled candidates: `tail` and `head` are (student logits `[B, C]`, source
        ids `[B, C]`, target ids `[B, C]`), global ids of the candidate pairs (mini-batch training)."""
        kl = 0.5 * sum(self._candidate_loss(et, *side) for side in (tail, head))
        return (1 - self.weight) * label_loss + self.weight * kl

    def _candidate_loss(self, et: EdgeType, student: Tensor, src: Tensor, dst: Tensor) -> Tensor:
        device = self.z[et[0]].device
        with torch.no_grad():
            teacher = self.model.score(et, self.z[et[0]][src.reshape(-1).to(device)],
                                       self.z[et[2]][dst.reshape(-1).to(device)]).view(student.shape)
        return distillation_loss(student, teacher.to(student.device), temperature=self.temperature)


class Distillation(Objective):
    """Another objective (the supervised one) with a teacher mixed into each of its losses."""

    def __init__(self, base: Objective, teacher: Teacher):
        self.base, self.teacher = base, teacher
        self.validates, self.name, self.activity = base.validates, base.name, f"{base.activity} (distilled)"

    def modules(self):
        return self.base.modules()

    def check(self, mode: str) -> None:
        self.base.check(mode)

    def start(self, x, m, device) -> None:
        self.base.start(x, m, device)

    def epoch_steps(self, mode, epoch, generator, ctx):
        return self.base.epoch_steps(mode, epoch, generator, ctx)

    def step_loss(self, trained, batch, generator):
        return self.base.step_loss(trained, batch, generator, teacher=self.teacher)
