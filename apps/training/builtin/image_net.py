"""The network of the built-in image classifier; copied next to customize_service.py in the model package.

A compact CNN (three conv blocks, global average pooling, dropout, linear) that trains from
scratch on small images in seconds on a CPU and scales to larger inputs on a GPU.
"""
import torch
from torch import nn


class ImageNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(block(3, width), nn.MaxPool2d(2), block(width, width * 2), nn.MaxPool2d(2),
                                      block(width * 2, width * 4), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(width * 4, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def to_tensor(image, size: int):
    """A PIL image as the network's input: RGB, `size`×`size`, scaled to [-1, 1], shape (3, size, size)."""
    import numpy as np
    from PIL import Image

    image = image.convert("RGB").resize((size, size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())
