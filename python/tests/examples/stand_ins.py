"""What the peers' examples import for loading data, for a machine without torch, torchvision or OpenCV.

The examples in this folder are NNCF's and POT's own scripts (upstream/ holds them as fetched); the adapted copies
change only their imports and the lines that say where data and models are. What those imports gave is here, as
far as the examples use it, with the libraries' semantics:

- ``torch`` (``torch.utils.data.DataLoader``) and ``Tensor``: a numpy array with ``.numpy()``;
- ``datasets.ImageFolder`` and ``transforms`` (``Resize``, ``CenterCrop``, ``ToTensor``, ``Normalize``,
  ``Compose``) as torchvision applies them to PIL images — except that a class folder is named by its class index
  (``0042/``), because the bundled photos are ImageNet photos scored by a 1000-class model, and torchvision would
  number only the folders present;
- ``imread`` and ``cv2_resize`` as OpenCV's (BGR ``uint8`` HWC; bilinear, size given as ``(width, height)``),
  through Pillow.

torch and torchvision cannot be had here (the CPU wheels and their CUDA dependencies are gigabytes); OpenCV is
50 MB for two functions. Pillow is in scripts/requirements.txt.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image


class Tensor(np.ndarray):
    """A torch tensor as the examples use one: an array with ``.numpy()``."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


def _tensor(values) -> Tensor:
    return np.asarray(values).view(Tensor)


class DataLoader:
    """``torch.utils.data.DataLoader(dataset, batch_size, shuffle=False)``: batches of stacked items."""

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False):
        if shuffle:
            raise ValueError("this DataLoader stand-in reads in order only (shuffle=False)")
        self.dataset, self.batch_size = dataset, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.dataset), self.batch_size):
            items = [self.dataset[i] for i in range(start, min(start + self.batch_size, len(self.dataset)))]
            yield tuple(_tensor(np.stack([np.asarray(item[k]) for item in items])) for k in range(len(items[0])))


torch = SimpleNamespace(utils=SimpleNamespace(data=SimpleNamespace(DataLoader=DataLoader)))


class ImageFolder:
    """``torchvision.datasets.ImageFolder(root, transform)``: ``(transform(image), class)`` for every image of
    ``root/<class>/``, in sorted order; the class is the folder's name read as an integer (see the module doc)."""

    def __init__(self, root, transform=None):
        self.samples = [(path, int(folder.name)) for folder in sorted(Path(root).iterdir()) if folder.is_dir()
                        for path in sorted(folder.iterdir())]
        self.transform = transform or (lambda image: image)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


datasets = SimpleNamespace(ImageFolder=ImageFolder)


class Resize:
    """``transforms.Resize(size)`` with an int: the shorter side to ``size``, bilinear (as torchvision on PIL)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.size * long / short)
        size = (self.size, new_long) if width <= height else (new_long, self.size)
        return image.resize(size, Image.BILINEAR)


class CenterCrop:
    """``transforms.CenterCrop(size)``: torchvision's rounding of the offsets."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        top, left = int(round((height - self.size) / 2.0)), int(round((width - self.size) / 2.0))
        return image.crop((left, top, left + self.size, top + self.size))


class ToTensor:
    """``transforms.ToTensor()``: CHW float32 in [0, 1]."""

    def __call__(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0


class Normalize:
    """``transforms.Normalize(mean, std)`` per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]

    def __call__(self, tensor: np.ndarray) -> np.ndarray:
        return (tensor - self.mean) / self.std


class Compose:
    """``transforms.Compose(steps)``."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, image):
        for step in self.steps:
            image = step(image)
        return image


transforms = SimpleNamespace(Resize=Resize, CenterCrop=CenterCrop, ToTensor=ToTensor, Normalize=Normalize,
                             Compose=Compose)


def imread(path: str) -> np.ndarray:
    """``cv2.imread``: BGR ``uint8`` HWC."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))[:, :, ::-1].copy()


def cv2_resize(image: np.ndarray, size) -> np.ndarray:
    """``cv2.resize(image, (width, height))``, bilinear."""
    width, height = (int(v) for v in size)
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
