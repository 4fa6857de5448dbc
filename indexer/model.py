"""The embedding network: a torchvision classification backbone with an embedding head."""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from indexer.errors import ConfigError

DEFAULT_ARCH = "resnet50"
DEFAULT_EMBEDDING_DIM = 256
DEFAULT_INPUT_SIZE = 112
# Faces are not ImageNet photos, but the ImageNet statistics are what pretrained backbones
# expect, and they are as good as any for a network trained from scratch.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EmbeddingNet(nn.Module):
    """Backbone features -> linear projection -> batch norm -> L2-normalised embedding.

    ``embedding_dim=0`` keeps the backbone's own features (no head), which is how the
    untrained ImageNet baseline is served.
    """

    def __init__(
        self,
        arch: str = DEFAULT_ARCH,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.backbone = backbone if backbone is not None else build_backbone(arch)
        self.feature_dim = strip_classifier(self.backbone)
        if embedding_dim:
            self.head: nn.Module = nn.Sequential(
                nn.Linear(self.feature_dim, embedding_dim, bias=False),
                nn.BatchNorm1d(embedding_dim),
            )
            self.embedding_dim = embedding_dim
        else:
            self.head = nn.Identity()
            self.embedding_dim = self.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(images)).float(), dim=1)


def build_backbone(arch: str, weights: str | None = None) -> nn.Module:
    """Any torchvision classification model by name."""
    try:
        return torchvision.models.get_model(arch, weights=weights)
    except (ValueError, KeyError) as exc:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise ConfigError(
            f"unknown architecture {arch!r} (torchvision models: {known}, ...)"
        ) from exc


def strip_classifier(model: nn.Module) -> int:
    """Replace the model's last Linear layer by Identity; return its input width.

    Works for ResNets (``fc``), EfficientNets and VGGs (``classifier[-1]``), ViTs
    (``heads.head``) alike, so any torchvision classifier can be a backbone.
    """
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None or last_name is None:
        raise ConfigError(f"{type(model).__name__} has no final Linear layer to replace")
    parent = model
    *path, leaf = last_name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, leaf, nn.Identity())
    return last.in_features
