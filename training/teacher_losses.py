"""What a student learns from a teacher's vectors: where each face points, and how the faces
of a batch relate to each other."""

from __future__ import annotations

import torch


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos): unit vectors in, so the cosine is the dot product."""
    return (1.0 - (student * teacher).sum(dim=1)).mean()


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the in-batch similarity matrices, diagonal left out.

    Retrieval ranks by similarity, so matching the teacher's similarities between faces is
    matching what is measured; the pointwise cosine loss alone leaves the student's errors
    free to shuffle neighbours (the pilot's mAP lagged top-1 far behind the teacher's)."""
    n = len(student)
    if n < 2:
        return student.new_zeros(())
    off = ~torch.eye(n, dtype=torch.bool, device=student.device)
    return ((student @ student.T - teacher @ teacher.T)[off] ** 2).mean()
