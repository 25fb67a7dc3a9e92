"""The DAFL image generator: noise to an image of the space's input shape.

Chen et al., "Data-Free Learning of Student Networks", ICCV 2019, arXiv 1904.01186, section 4
(a DCGAN-style generator: linear -> two upsample+conv stages -> tanh -> BatchNorm without affine
parameters, so generated images are standardised like normalised real inputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DAFLGenerator"]


class DAFLGenerator(nn.Module):
    """``z -> image`` of shape ``(channels, height, width)``.

    Args:
        image_shape: ``(C, H, W)`` of the images to make (the space's input shape).
        latent_dim: Size of the noise vector ``z`` (default 100, as DAFL's MNIST setting).
        width: Channels of the first feature map (default 128, as DAFL).
        affine_output: Give the output BatchNorm a learned per-channel scale and shift. DAFL's
            (``False``) fixes every batch to mean 0, variance 1 per channel, which matches inputs
            standardised by their data set's own statistics; nas-prune's inputs are normalised
            with ImageNet's, so real digits have mean -0.78, std 1.30 (background-dominated) and
            three equal channels, which a fixed standardisation cannot produce.
    """

    def __init__(self, *, image_shape: tuple[int, ...], latent_dim: int = 100, width: int = 128,
                 affine_output: bool = False) -> None:
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        self.latent_dim = latent_dim
        self.image_shape = (c, h, w)
        self.init_size = (math.ceil(h / 4), math.ceil(w / 4))
        self.fc = nn.Linear(latent_dim, width * self.init_size[0] * self.init_size[1])
        self.width = width
        self.body = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width, eps=0.8),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width // 2, 3, padding=1),
            nn.BatchNorm2d(width // 2, eps=0.8),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width // 2, c, 3, padding=1),
            nn.Tanh(),
            nn.BatchNorm2d(c, affine=affine_output),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(z.shape[0], self.width, *self.init_size)
        x = self.body(x)
        h, w = self.image_shape[1:]
        return x[:, :, :h, :w]

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images from ``n`` standard-normal noise vectors."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return self(z)
